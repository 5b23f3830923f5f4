"""A small framework for SaaS simulators ("sandboxes").

A sandbox answers `httpx.Request`s with the vendor's own paths, shapes and failure signals. It is written
from the vendors' documented behaviour only and shares no code with the hub. The same object serves:

* in-process: `httpx.Client(transport=sandbox.transport(), base_url=...)`, no sockets;
* on loopback: `local.sandboxes.server.SandboxServer(sandbox)`.

Every sandbox records each request it receives, can inject latency, throttling, 5xx answers, timeouts and lost
responses at configured rates with a seeded random generator, and enforces an optional limit on requests in
flight at once (answered in the vendor's own shape) while recording the peak it reached.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import httpx

JSON = Any
Handler = Callable[["Call"], httpx.Response]


@dataclass(frozen=True)
class Faults:
    """What can go wrong, and how often (each rate is a probability per governed request).

    latency: seconds added to every governed request, fixed or a (low, high) uniform range.
    throttle_rate: answered with the vendor's throttling signal (429, or Salesforce's 403).
    error_rate: answered with a 5xx picked from `error_statuses`, in the vendor's error shape.
    timeout_rate: never answered. In-process `httpx.ReadTimeout` is raised before anything is processed; on
        loopback the server stalls for `stall_seconds` ("stall") or closes the connection ("drop").
    lost_response_rate: the request IS processed, then the answer is lost the same way (the ambiguous outcome
        that makes blind retries of non-idempotent calls create duplicates).
    duplicate_rate: vendor redelivery where the vendor has one (Salesforce Outbound Messages are
        at-least-once: a notification is delivered again).
    lock_rate: record-lock contention on writes where the vendor has it (Salesforce UNABLE_TO_LOCK_ROW).
    path_pattern: when set, faults (latency included) apply only to paths matching this regex.
    seed: seed of the `random.Random` every draw comes from, so a run is repeatable.
    """

    latency: float | tuple[float, float] = 0.0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    duplicate_rate: float = 0.0
    lock_rate: float = 0.0
    path_pattern: str | None = None
    seed: int = 0
    loopback_timeout: Literal["stall", "drop"] = "stall"
    stall_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "throttle_rate",
            "error_rate",
            "timeout_rate",
            "lost_response_rate",
            "duplicate_rate",
            "lock_rate",
        ):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        low, high = self.latency_bounds
        if low < 0 or high < low:
            raise ValueError(f"latency must be >= 0 and a (low, high) range ordered, got {self.latency}")
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError(f"error_statuses must be 5xx codes, got {self.error_statuses}")
        if self.loopback_timeout not in ("stall", "drop"):
            raise ValueError(f"loopback_timeout must be 'stall' or 'drop', got {self.loopback_timeout}")

    @property
    def latency_bounds(self) -> tuple[float, float]:
        """The latency as a (low, high) range."""
        if isinstance(self.latency, tuple | list):
            low, high = self.latency
            return float(low), float(high)
        return float(self.latency), float(self.latency)

    def applies_to(self, path: str) -> bool:
        """Whether these faults apply to a request for `path`."""
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (used by the loopback admin surface)."""
        data = asdict(self)
        data["latency"] = list(self.latency) if isinstance(self.latency, tuple) else self.latency
        data["error_statuses"] = list(self.error_statuses)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Faults | None = None) -> Faults:
        """Build faults from JSON; keys not given keep the value they have in `base` (or the default)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(data)
        if isinstance(values.get("latency"), list):
            values["latency"] = tuple(values["latency"])
        if "error_statuses" in values:
            values["error_statuses"] = tuple(values["error_statuses"])
        return replace(base or cls(), **values)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox saw it, and what became of it.

    status is None when the client got no answer (injected timeout or lost response); fault names the
    injected fault or the limit that answered ("throttle", "error", "timeout", "lost_response",
    "concurrency"), None for a normal answer.
    """

    method: str
    path: str
    query: dict[str, str]
    json: JSON
    status: int | None
    at: float
    duration: float
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Call:
    """A request routed to a handler: the raw request, path parameters, query and parsed body."""

    request: httpx.Request
    params: dict[str, str]
    query: dict[str, str]
    body: JSON

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def origin(self) -> str:
        """scheme://host[:port] the client addressed (used to build the vendor's self links)."""
        return f"{self.request.url.scheme}://{self.request.url.netloc.decode('ascii')}"

    def bearer_token(self) -> str | None:
        """The token of an `Authorization: Bearer <token>` header, if any."""
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


@dataclass(frozen=True)
class Route:
    """method + full-path regex -> handler. Governed: limits and faults apply."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    governed: bool = True


class MalformedBody:
    """Marker for a request body that claimed to be JSON but did not parse."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"MalformedBody({self.text[:40]!r})"


class Reply(Exception):  # noqa: N818 - it is a reply, raised to short-circuit a handler
    """Raised by a handler to answer at once with a prepared (usually error) response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_response(
    status: int,
    payload: JSON = None,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json;charset=UTF-8",
) -> httpx.Response:
    """A response with a JSON body (or no body when payload is None)."""
    all_headers = dict(headers or {})
    if payload is None:
        return httpx.Response(status, headers=all_headers)
    all_headers.setdefault("content-type", content_type)
    return httpx.Response(status, content=json.dumps(payload).encode(), headers=all_headers)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_body(request: httpx.Request) -> JSON:
    """JSON bodies as JSON, form bodies as a dict, anything else as None."""
    content = request.content
    if not content:
        return None
    content_type = request.headers.get("content-type", "").lower()
    text = content.decode("utf-8", errors="replace")
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return MalformedBody(text)


class Sandbox:
    """Base of every simulator: routing, request log, faults, concurrency limit, thread-safe state.

    Subclasses register routes in `_register_routes`, (re)build their records in `_reset_state`, and give the
    vendor's shapes for the generic answers (`not_found_response`, `throttled_response`,
    `server_error_response`, `concurrency_exceeded_response`). `authorize` runs before a governed handler
    (bearer checks, API budgets), `rate_limit` after it (a vendor's request-rate window, recorded as a fault),
    and `finalize` decorates every answer (e.g. Salesforce's limit header).
    """

    vendor = "sandbox"

    def __init__(self, *, faults: Faults | None = None, concurrency_limit: int | None = None) -> None:
        if concurrency_limit is not None and concurrency_limit < 1:
            raise ValueError("concurrency_limit must be >= 1 or None")
        self.concurrency_limit = concurrency_limit
        self._lock = threading.RLock()  # guards vendor records
        self._meta = threading.Lock()  # guards the log, counters and the random generator
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._log: list[RecordedRequest] = []
        self._in_flight = 0
        self._peak_in_flight = 0
        self._routes: list[Route] = []
        self._register_routes()
        self._reset_state()

    # ----------------------------------------------------------------- subclass hooks
    def _register_routes(self) -> None:
        """Register the vendor's routes with `self.route(...)`."""

    def _reset_state(self) -> None:
        """(Re)build the vendor's records as freshly constructed."""

    def not_found_response(self, call: Call) -> httpx.Response:
        return json_response(404, {"error": "not found"})

    def throttled_response(self, call: Call) -> httpx.Response:
        return json_response(429, {"error": "throttled"})

    def server_error_response(self, call: Call, status: int) -> httpx.Response:
        return json_response(status, {"error": "server error"})

    def concurrency_exceeded_response(self, call: Call) -> httpx.Response:
        return json_response(429, {"error": "too many concurrent requests"})

    def authorize(self, call: Call) -> httpx.Response | None:
        """Return an answer to stop the request (bad token, budget used), or None to let it through."""
        return None

    def rate_limit(self, call: Call) -> tuple[httpx.Response, str] | None:
        """After `authorize`: a vendor rate limit's answer and the fault name it is recorded under (e.g.
        "rate_limit"), or None to let the request through."""
        return None

    def finalize(self, call: Call, response: httpx.Response) -> httpx.Response:
        """Decorate an answer before it leaves (vendor headers)."""
        return response

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Seed records from a JSON payload (loopback admin surface); returns the ids created."""
        raise ValueError(
            f"{self.vendor} sandbox does not take seed payloads"
        )  # every vendor sandbox overrides

    def state(self) -> dict[str, Any]:
        """Every record, as JSON (loopback admin surface)."""
        return {}

    # ----------------------------------------------------------------- routing
    def route(self, method: str, pattern: str, handler: Handler, *, governed: bool = True) -> None:
        """Register `handler` for `method` on paths fully matching `pattern` (named groups become params)."""
        self._routes.append(Route(method.upper(), re.compile(pattern), handler, governed))

    def _match_route(self, request: httpx.Request) -> tuple[Call, Route | None]:
        """Routes match the percent-encoded path (so an encoded "/" stays inside its segment)."""
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        query = dict(request.url.params)
        body = parse_body(request)
        for route in self._routes:
            if route.method != request.method:
                continue
            match = route.pattern.fullmatch(raw_path)
            if match:
                params = {
                    name: unquote(value) for name, value in match.groupdict().items() if value is not None
                }
                return Call(request, params, query, body), route
        return Call(request, {}, query, body), None

    # ----------------------------------------------------------------- transports
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request like the vendor would (the `httpx.MockTransport` handler)."""
        received = time.time()
        started = time.monotonic()
        call, route = self._match_route(request)
        response, fault = self._respond(call, route)
        self._record(call, response, fault, received, time.monotonic() - started)
        if response is None:
            raise httpx.ReadTimeout(f"{self.vendor} sandbox: no answer ({fault})", request=request)
        return response

    def transport(self) -> httpx.MockTransport:
        """An in-process transport: `httpx.Client(transport=sandbox.transport(), base_url=...)`."""
        return httpx.MockTransport(self.handle)

    def client(self, base_url: str, **kwargs: Any) -> httpx.Client:
        """Convenience: an `httpx.Client` wired to this sandbox in-process."""
        return httpx.Client(transport=self.transport(), base_url=base_url, **kwargs)

    # ----------------------------------------------------------------- request pipeline
    def _respond(self, call: Call, route: Route | None) -> tuple[httpx.Response | None, str | None]:
        if route is None:
            return self.finalize(call, self.not_found_response(call)), None
        if not route.governed:
            return self.finalize(call, self._dispatch(route, call)), None
        if not self._admit():
            return self.finalize(call, self.concurrency_exceeded_response(call)), "concurrency"
        try:
            return self._governed(call, route)
        finally:
            self._release()

    def _governed(self, call: Call, route: Route) -> tuple[httpx.Response | None, str | None]:
        faults = self._faults
        active = faults.applies_to(call.path)
        if active:
            self._sleep_latency(faults)
            if self.roll(faults.timeout_rate):
                return None, "timeout"
        stopped = self.authorize(call)
        if stopped is not None:
            return self.finalize(call, stopped), None
        limited = self.rate_limit(call)
        if limited is not None:
            return self.finalize(call, limited[0]), limited[1]
        if active and self.roll(faults.throttle_rate):
            return self.finalize(call, self.throttled_response(call)), "throttle"
        if active and self.roll(faults.error_rate):
            status = self.choice(faults.error_statuses)
            return self.finalize(call, self.server_error_response(call, status)), "error"
        response = self.finalize(call, self._dispatch(route, call))
        if active and self.roll(faults.lost_response_rate):
            return None, "lost_response"
        return response, None

    @staticmethod
    def _dispatch(route: Route, call: Call) -> httpx.Response:
        try:
            return route.handler(call)
        except Reply as reply:
            return reply.response

    def _sleep_latency(self, faults: Faults) -> None:
        low, high = faults.latency_bounds
        if high <= 0:
            return
        delay = low if low == high else self.uniform(low, high)
        time.sleep(delay)

    def _admit(self) -> bool:
        with self._meta:
            if self.concurrency_limit is not None and self._in_flight >= self.concurrency_limit:
                return False
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return True

    def _release(self) -> None:
        with self._meta:
            self._in_flight -= 1

    def _record(
        self, call: Call, response: httpx.Response | None, fault: str | None, received: float, duration: float
    ) -> None:
        body = call.body.text if isinstance(call.body, MalformedBody) else call.body
        entry = RecordedRequest(
            call.method,
            call.path,
            call.query,
            body,
            None if response is None else response.status_code,
            received,
            duration,
            fault,
        )
        with self._meta:
            self._log.append(entry)

    # ----------------------------------------------------------------- seeded randomness
    def roll(self, rate: float) -> bool:
        """True with probability `rate`, drawn from the seeded generator (no draw when rate is 0)."""
        if rate <= 0.0:
            return False
        with self._meta:
            return self._rng.random() < rate

    def uniform(self, low: float, high: float) -> float:
        with self._meta:
            return self._rng.uniform(low, high)

    def choice(self, options: Iterable[Any]) -> Any:
        items = list(options)
        with self._meta:
            return self._rng.choice(items)

    def shuffled(self, items: Iterable[Any]) -> list[Any]:
        result = list(items)
        with self._meta:
            self._rng.shuffle(result)
        return result

    # ----------------------------------------------------------------- faults
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (or change some settings); the random generator is re-seeded from them."""
        base = faults if faults is not None else (self._faults if changes else Faults())
        new = replace(base, **changes) if changes else base
        with self._meta:
            self._faults = new
            self._rng = random.Random(new.seed)
        return new

    # ----------------------------------------------------------------- inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request recorded so far, oldest first."""
        with self._meta:
            return list(self._log)

    def calls(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        status: int | None = None,
        fault: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests matching every criterion given."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        ]

    def call_count(self, method: str | None = None, path_contains: str | None = None, **criteria: Any) -> int:
        return len(self.calls(method, path_contains, **criteria))

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were ever being processed at the same time."""
        with self._meta:
            return self._peak_in_flight

    @property
    def in_flight(self) -> int:
        with self._meta:
            return self._in_flight

    def stats(self) -> dict[str, Any]:
        """Counters for the loopback admin surface."""
        requests = self.requests
        return {
            "vendor": self.vendor,
            "requests": len(requests),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "concurrency_limit": self.concurrency_limit,
            "faults_injected": {
                kind: sum(1 for r in requests if r.fault == kind)
                for kind in sorted({r.fault for r in requests if r.fault})
            },
            "faults": self._faults.to_dict(),
        }

    def reset(self) -> None:
        """Back to freshly constructed (records, tokens, log, counters); configuration and faults are kept."""
        with self._lock:
            self._reset_state()
        with self._meta:
            self._log.clear()
            self._peak_in_flight = self._in_flight
            self._rng = random.Random(self._faults.seed)
