"""One error taxonomy for every connector and step.

Adapters map each vendor's signals to these classes once; flows and the state machine decide on the class,
never on message text. The class *name* is the error name Step Functions sees, so the ASL's Retry and Catch
blocks list these names: keep them stable.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """Base of the taxonomy. ``system`` names the system that answered, ``code`` its own error code."""

    def __init__(self, message: str, *, system: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.code = code

    def to_dict(self) -> dict[str, str | None]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "system": self.system,
            "code": self.code,
        }


class TransientError(HubError):
    """Worth retrying as is: timeouts, 5xx, lock contention."""


class ThrottledError(HubError):
    """The system asked us to slow down; ``retry_after`` is its hint in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        system: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, system=system, code=code)
        self.retry_after = retry_after


class ConflictError(HubError):
    """The target holds a state that contradicts the request (e.g. an external id matching several records)."""


class PermanentError(HubError):
    """Retrying cannot help: rejected credentials, missing records, unsupported operations."""


class DataValidationError(PermanentError):
    """The business data is wrong or incomplete; ``problems`` names each field and what is wrong with it."""

    def __init__(
        self, message: str, *, problems: list[dict[str, str]] | None = None, **kwargs: str | None
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.problems = problems or []


RETRYABLE = (TransientError, ThrottledError)


def field_problems(error: Exception, prefix: str = "") -> list[dict[str, str]]:
    """Field-named problems from a pydantic ValidationError, without the offending values (they may be
    personal data); any other error becomes one problem about ``prefix`` or the body."""
    errors = getattr(error, "errors", None)
    if callable(errors) and type(error).__name__ == "ValidationError":
        return [
            {
                "field": prefix + ".".join(str(p) for p in e["loc"])
                if e["loc"]
                else prefix.rstrip(".") or "body",
                "problem": e["msg"],
            }
            for e in errors(include_url=False, include_input=False)
        ]
    return [{"field": prefix.rstrip(".") or "body", "problem": str(error)}]


def unmapped(system: str, field: str, problem: str) -> DataValidationError:
    """A value the hub's configuration for ``system`` has no mapping for (fix the configuration, redrive)."""
    return DataValidationError(
        f"{system} configuration lacks a mapping",
        problems=[{"field": field, "problem": problem}],
        system=system,
        code="UNMAPPED_VALUE",
    )


def mapped(table: dict[str, Any], key: str, *, system: str, field: str, problem: str) -> Any:
    """``table[key]``, or the ``unmapped`` error naming ``field`` (a present ``None`` is a mapping too)."""
    if key not in table:
        raise unmapped(system, field, problem)
    return table[key]
