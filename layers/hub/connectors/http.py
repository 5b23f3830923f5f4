"""Shared HTTP machinery of every adapter: auth, retries, timeouts, error classification, safe logging.

An adapter owns one :class:`ApiClient`. The client sends each call through the injected ``httpx.Client``, adds
the bearer token from its auth strategy, classifies every answer with the vendor's ``classify`` hook onto the
hub's error taxonomy (:mod:`hub.errors`), and retries what is worth retrying:

- transient and throttled errors, with exponential backoff and full jitter, honouring ``Retry-After``
  (seconds or HTTP date); capped by a number of attempts *and* a total sleep budget, both small because
  Step Functions retries further out (a ``Retry-After`` beyond the budget is handed up in the error instead
  of being slept here);
- a ``401`` once per call after refreshing the token, when the strategy can refresh.

A call that is not idempotent (``POST`` by default) is replayed only when the vendor cannot have processed
it: throttled answers, a refused connection, a token that could not be obtained. After an ambiguous failure
(read timeout, 5xx) it raises at once, so the adapter's own find-before-create logic decides on the next run.

A shared concurrency budget holds a slot only while a request is in flight, never while sleeping between
retries: either through ``ApiClient(concurrency=...)`` (around each attempt) or, for an adapter built by
``hub.connectors.factory``, through :class:`ConcurrencyTransport` (around each request the adapter's
``httpx.Client`` sends, the token request included). Use one of the two, never both: a slot would be taken
twice per request.

Logs carry system, method, path *template*, status, attempt and duration only: never tokens, secrets, bodies,
query strings or record ids.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from hub.errors import (
    RETRYABLE,
    ConflictError,
    DataValidationError,
    HubError,
    PermanentError,
    ThrottledError,
    TransientError,
)

logger = logging.getLogger("hub.connectors")

DEFAULT_TIMEOUT = httpx.Timeout(connect=3.05, read=20.0, write=20.0, pool=5.0)
"""Explicit per-request timeouts (seconds). Lambda and Step Functions retry further out, so stay short."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
"""PATCH is idempotent for the hub's calls (it sets fields to values); pass ``idempotent=`` to override."""

Classifier = Callable[[httpx.Response], HubError | None]

Concurrency = Callable[[], contextlib.AbstractContextManager[Any]]
"""A shared concurrency budget's hook: each call gives a context manager holding one slot while it is open
(``hub.concurrency.ConcurrencyBudget.slot``). Entering may raise ``ThrottledError`` when no slot frees."""


# --------------------------------------------------------------------------------------------------- parsing


def parse_json(response: httpx.Response) -> Any:
    """The body as JSON with every non-integer number as a ``Decimal`` (money never passes through float)."""
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def parse_retry_after(value: str | None, *, now: Callable[[], dt.datetime] | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110); None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN guard
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = (now or (lambda: dt.datetime.now(dt.UTC)))()
    return max(0.0, (when - current).total_seconds())


# --------------------------------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Retries inside one Lambda invocation: few and short, Step Functions retries further out.

    ``max_attempts`` counts every try (3 = the first call and two retries). ``max_total_sleep`` caps the
    seconds slept per call; a wait that would exceed what is left ends the retries and the last error is
    raised (a ``ThrottledError`` keeps the vendor's ``retry_after`` for the caller). ``sleep`` and ``random``
    are injectable so tests run instantly and deterministically.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total_sleep: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)  # noqa: S311 - jitter, not crypto

    def backoff(self, retry_number: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(n-1))] for the n-th retry."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return self.random() * ceiling

    def delay(self, retry_number: int, retry_after: float | None, slept: float) -> float | None:
        """Seconds to wait before the n-th retry, or None when the sleep budget does not allow it."""
        remaining = self.max_total_sleep - slept
        if retry_after is not None:
            return retry_after if retry_after <= remaining else None
        if remaining <= 0:
            return None
        return min(self.backoff(retry_number), remaining)


NO_RETRY = RetryPolicy(max_attempts=1)


# ------------------------------------------------------------------------------------------------------ auth


class AuthStrategy(Protocol):
    """Gives the bearer token for a request; may be able to refresh it after a 401."""

    can_refresh: bool

    def access_token(self) -> str: ...

    def invalidate(self, token: str) -> None:
        """The vendor rejected ``token``: forget it (if it is still the cached one)."""
        ...


class StaticBearer:
    """A long-lived token kept in Secrets Manager (e.g. Kantata's OAuth token): nothing to refresh."""

    can_refresh = False

    def __init__(self, token: str) -> None:
        if not token:
            raise PermanentError("empty bearer token", code="invalid_secret")
        self._token = token

    def access_token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticBearer(token=***)"


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float | None  # monotonic clock; None: valid until the vendor answers 401
    answer: Mapping[str, Any] = field(repr=False)  # the token answer minus the token (e.g. instance_url)

    def __repr__(self) -> str:
        return f"AccessToken(value=***, expires_at={self.expires_at})"


class OAuth2ClientCredentials:
    """OAuth 2.0 client-credentials grant with a thread-safe token cache.

    The token is fetched once and shared by every request (and thread) of the adapter. With ``expires_in`` in
    the answer it is refreshed ``refresh_margin`` seconds before it runs out; without it (Salesforce) it is
    kept until the vendor answers 401, then refreshed once and the call replayed. ``extra_form`` adds fields
    to the token request (e.g. ``scope``, or a JWT ``client_assertion`` for real NetSuite).
    """

    can_refresh = True

    def __init__(
        self,
        http: httpx.Client,
        *,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        system: str,
        extra_form: Mapping[str, str] | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not token_url or not client_id:
            raise PermanentError("token_url and client_id are required", system=system, code="invalid_secret")
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._system = system
        self._extra_form = dict(extra_form or {})
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(system={self._system!r}, client_id=***)"

    def access_token(self) -> str:
        return self.current().value

    def current(self) -> AccessToken:
        """The cached token, fetched (once, under a lock) when missing or about to expire."""
        token = self._token
        if token is not None and not self._expired(token):
            return token
        with self._lock:
            token = self._token
            if token is None or self._expired(token):
                token = self._fetch()
                self._token = token
            return token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None

    def _expired(self, token: AccessToken) -> bool:
        return token.expires_at is not None and self._clock() >= token.expires_at

    def _fetch(self) -> AccessToken:
        form = {"grant_type": "client_credentials", "client_id": self._client_id, **self._extra_form}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        started = time.perf_counter()
        try:
            response = self._http.post(
                self._token_url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, self._system) from None
        _log(self._system, "POST", "{token_url}", response.status_code, 1, started)
        if response.status_code >= 300:
            raise _token_error(response, self._system)
        answer = parse_json(response)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("access_token"), str):
            raise TransientError(
                "token answer without access_token", system=self._system, code="bad_token_answer"
            )
        expires_at = None
        expires_in = answer.get("expires_in")
        if expires_in is not None:
            try:
                lifetime = float(expires_in)
            except (TypeError, ValueError):
                lifetime = 0.0
            margin = min(self._refresh_margin, lifetime / 2)
            expires_at = self._clock() + lifetime - margin
        rest = {k: v for k, v in answer.items() if k not in {"access_token", "refresh_token", "id_token"}}
        return AccessToken(value=answer["access_token"], expires_at=expires_at, answer=rest)


def _token_error(response: httpx.Response, system: str) -> HubError:
    body = parse_json(response)
    code = body.get("error") if isinstance(body, Mapping) else None
    status = response.status_code
    message = f"{system} token request answered {status}"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return ThrottledError(message, retry_after=retry_after, system=system, code=code or "429")
    if status >= 500 or status == 408:
        return TransientError(message, system=system, code=code or str(status))
    # invalid_client, invalid_grant, unauthorized_client...: configuration, retrying cannot help.
    return PermanentError(message, system=system, code=code or str(status))


# ---------------------------------------------------------------------------------------- classification


def retry_after_of(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def classify_status(
    response: httpx.Response, *, system: str | None = None, code: str | None = None
) -> HubError | None:
    """The generic HTTP reading, used by each vendor hook for what it does not decide itself."""
    status = response.status_code
    if status < 300 or status in (301, 302, 303, 304, 307, 308):
        return None
    label = code or str(status)
    message = f"{system or 'vendor'} answered {status}" + (f" {code}" if code else "")
    if status == 429:
        return ThrottledError(message, retry_after=retry_after_of(response), system=system, code=label)
    if status == 503 and response.headers.get("Retry-After"):
        return ThrottledError(message, retry_after=retry_after_of(response), system=system, code=label)
    if status in (408, 425) or status >= 500:
        return TransientError(message, system=system, code=label)
    if status in (300, 409, 412):
        return ConflictError(message, system=system, code=label)
    if status in (400, 422):
        return DataValidationError(message, system=system, code=label)
    return PermanentError(message, system=system, code=label)


def _transport_error(exc: httpx.TransportError, system: str) -> TransientError:
    kind = type(exc).__name__
    return TransientError(f"{system} call failed: {kind}", system=system, code=kind)


def _not_sent(exc: httpx.TransportError) -> bool:
    """True when the request cannot have reached the vendor (safe to replay even when not idempotent)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


# ------------------------------------------------------------------------------------------------ logging


def _log(system: str, method: str, path: str, status: int | str, attempt: int, started: float) -> None:
    logger.info(
        "vendor call",
        extra={
            "system": system,
            "method": method,
            "path": path,
            "status": status,
            "attempt": attempt,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


# ------------------------------------------------------------------------------------------------- client


class ApiClient:
    """One vendor system's HTTP access: base URL, auth, retries, classification and safe logging."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        system: str,
        base_url: str | Callable[[], str],
        auth: AuthStrategy,
        classify: Classifier | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        concurrency: Concurrency | None = None,
    ) -> None:
        self.http = http
        self.system = system
        self._base_url = base_url
        self.auth = auth
        self._classify = classify or (lambda response: classify_status(response, system=system))
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        # Hook for the shared per-system concurrency budget: a context manager held around each attempt.
        self._concurrency = concurrency or contextlib.nullcontext

    def base_url(self) -> str:
        base = self._base_url() if callable(self._base_url) else self._base_url
        return base.rstrip("/")

    def url(self, path_template: str, path_params: Mapping[str, Any] | None = None) -> str:
        path = path_template
        if path_params:
            path = path_template.format(**{k: quote(str(v), safe=":") for k, v in path_params.items()})
        return self.base_url() + path

    def request(
        self,
        method: str,
        path_template: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one call, retrying per the policy; the successful response, or the classified error raised.

        ``path_template`` (e.g. ``/sobjects/Opportunity/{id}``) is what gets logged; ``path_params`` are
        URL-encoded into it. ``idempotent`` defaults from the method (POST is not).
        """
        method = method.upper()
        replay_safe_always = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        policy = self.retry
        attempt = 0
        slept = 0.0
        refreshed = False
        while True:
            attempt += 1
            started = time.perf_counter()
            error: HubError
            replay_safe = replay_safe_always
            try:
                token = self.auth.access_token()
            except HubError as exc:  # the token call failed: nothing was sent
                error, replay_safe = exc, True
            else:
                try:
                    with self._concurrency():
                        response = self.http.request(
                            method,
                            self.url(path_template, path_params),
                            params=params,
                            json=json,
                            headers={**self._headers, **(headers or {}), "Authorization": f"Bearer {token}"},
                            timeout=self.timeout,
                        )
                except httpx.TransportError as exc:
                    _log(self.system, method, path_template, type(exc).__name__, attempt, started)
                    error = _transport_error(exc, self.system)
                    replay_safe = replay_safe_always or _not_sent(exc)
                else:
                    _log(self.system, method, path_template, response.status_code, attempt, started)
                    if response.status_code == 401 and self.auth.can_refresh and not refreshed:
                        # Expired or revoked session: refresh once and replay (not counted as an attempt).
                        self.auth.invalidate(token)
                        refreshed = True
                        attempt -= 1
                        continue
                    classified = self._classify(response)
                    if classified is None:
                        return response
                    error = classified
                    # A throttled call was refused, not processed: safe to replay.
                    replay_safe = replay_safe_always or isinstance(error, ThrottledError)
            if error.system is None:
                error.system = self.system
            if not isinstance(error, RETRYABLE) or not replay_safe or attempt >= policy.max_attempts:
                raise error
            wait = policy.delay(attempt, getattr(error, "retry_after", None), slept)
            if wait is None:
                raise error
            policy.sleep(wait)
            slept += wait

    def get_json(self, path_template: str, **kwargs: Any) -> Any:
        return parse_json(self.request("GET", path_template, **kwargs))


# ------------------------------------------------------------------------------------------- transport


class ConcurrencyTransport(httpx.BaseTransport):
    """Wraps a transport so every request holds a slot of ``concurrency`` while it is in flight.

    The slot is taken before the request is sent and given back when its response is closed (httpx closes
    it once the body is read, or on any error), so it is never held while a retry loop sleeps. A
    ``ThrottledError`` from a full budget propagates to the caller as is: the budget has already waited.
    """

    def __init__(self, transport: httpx.BaseTransport, concurrency: Concurrency) -> None:
        self._transport = transport
        self._concurrency = concurrency

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        held = self._concurrency()
        held.__enter__()
        try:
            response = self._transport.handle_request(request)
        except BaseException as exc:
            held.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if not isinstance(response.stream, httpx.SyncByteStream):
            held.__exit__(None, None, None)
            raise TypeError("ConcurrencyTransport wraps synchronous transports only")
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, held),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._transport.close()


class _ReleasingStream(httpx.SyncByteStream):
    """A response body that gives the slot back when it is closed (once)."""

    def __init__(self, stream: httpx.SyncByteStream, held: contextlib.AbstractContextManager[Any]) -> None:
        self._stream = stream
        self._held: contextlib.AbstractContextManager[Any] | None = held

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        held, self._held = self._held, None
        try:
            self._stream.close()
        finally:
            if held is not None:
                held.__exit__(None, None, None)
