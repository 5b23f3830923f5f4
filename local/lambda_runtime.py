"""Run each deployed Lambda's real handler when moto invokes it (moto needs Docker otherwise).

Every invocation in moto (direct Invoke, both Step Functions task styles, SQS event source mappings) goes
through ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)``. We
replace that one private method, and only here, with a call of the function's own ``handler.py`` loaded
from ``functions/<name>/`` (the same file CDK packages). An exception becomes the Lambda error payload
(``errorType`` = its class name), which is what Step Functions' Retry/Catch match on in AWS too.

Two ways to replace it:

- ``install()``: the handler runs in moto's own process (tests with ``mock_aws``);
- ``install_forwarding(url)``: moto runs in a process of its own (the local stack's embedded AWS, see
  ``local/embedded_aws.py``) and each invocation is handed to the process serving ``RuntimeServer`` at
  ``url``, where the handlers are registered: as the Lambda service hands an event to a function's
  runtime. The two processes then use both cores.

moto's minor version is pinned in the lock file; ``tests/integration/test_lambda_runtime.py`` guards it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
Handler = Callable[[Any, Any], Any]

_lock = threading.RLock()
_handlers: dict[str, Handler] = {}  # function name (as deployed) -> handler
_installed: Callable[..., Any] | None = None
invocations: list[dict[str, Any]] = []  # every in-process invocation, for reports and tests
# Applied over each function's own environment: the local stack quiets LOG_LEVEL for demos, nothing else.
ENV_OVERRIDES: dict[str, str] = {}


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(folder: str, entry: str = "handler.handler") -> Handler:
    """Import ``functions/<folder>/<module>.py`` under a unique module name and return its entry function."""
    module_name, func_name = entry.rsplit(".", 1)
    unique = f"pshub_functions.{folder}.{module_name}"
    with _lock:
        module = sys.modules.get(unique)
        if module is None:
            path = FUNCTIONS / folder / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
    return getattr(module, func_name)


def register(function_name: str, handler: Handler) -> None:
    with _lock:
        _handlers[function_name] = handler


def registered(function_name: str) -> Handler | None:
    with _lock:
        return _handlers.get(function_name)


def clear() -> None:
    """Forget every handler and the modules ``load_handler`` imported: the next stack's functions start cold,
    as a new deployment's do (a handler keeps its wiring, clients and table names, per container)."""
    with _lock:
        _handlers.clear()
        invocations.clear()
        for name in [m for m in sys.modules if m == "pshub_functions" or m.startswith("pshub_functions.")]:
            del sys.modules[name]


@dataclass(frozen=True)
class Function:
    """What an invocation needs of a deployed function (the attributes moto's ``LambdaFunction`` has)."""

    function_name: str
    function_arn: str
    environment_vars: dict[str, str]
    memory_size: int
    timeout: float

    @classmethod
    def of(cls, fn: Any) -> Function:
        return cls(
            function_name=fn.function_name,
            function_arn=fn.function_arn,
            environment_vars={k: str(v) for k, v in (fn.environment_vars or {}).items()},
            memory_size=int(fn.memory_size or 128),
            timeout=float(fn.timeout or 3),
        )


def _run(fn: Any, event: Any) -> tuple[str, bool, str]:
    handler = registered(fn.function_name)
    if handler is None:
        payload = {
            "errorType": "HandlerNotRegistered",
            "errorMessage": f"no in-process handler registered for {fn.function_name}",
        }
        return json.dumps(payload), True, ""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    os.environ.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
    os.environ.update(ENV_OVERRIDES)
    context = LambdaContext(
        function_name=fn.function_name,
        memory_limit_in_mb=int(fn.memory_size or 128),
        invoked_function_arn=fn.function_arn,
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=float(fn.timeout or 3),
        log_group_name=f"/aws/lambda/{fn.function_name}",
    )
    started = time.perf_counter()
    record = {"function": fn.function_name, "request_id": context.aws_request_id}
    try:
        result = handler(event, context)
        payload, errored = json.dumps(result, default=str), False
    except Exception as exc:  # the Lambda runtime's own error shape
        payload = json.dumps(
            {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
            }
        )
        errored = True
        record["error"] = type(exc).__name__
    record["ms"] = round((time.perf_counter() - started) * 1000, 2)
    with _lock:
        invocations.append(record)
    return payload, errored, ""  # the handlers' logs go to this process's stdout, as in a Lambda's log stream


def install() -> None:
    """Patch moto (idempotent). Call before the first invocation."""
    global _installed
    from moto.awslambda.models import LambdaFunction

    with _lock:
        if _installed is not None:
            return
        _installed = LambdaFunction._invoke_lambda

        def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
            return _run(self, event if event is not None else {})

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    logging.getLogger(__name__).debug("moto Lambda invocations now run in-process")


def install_forwarding(runtime_url: str) -> None:
    """Patch moto (in the embedded AWS's process) to hand every invocation to ``RuntimeServer`` at
    ``runtime_url``, and answer what the handler answered."""
    global _installed
    import httpx
    from moto.awslambda.models import LambdaFunction

    # no read timeout: an invocation lasts as long as its function (Step Functions waits as long)
    client = httpx.Client(timeout=httpx.Timeout(None, connect=10), limits=httpx.Limits(max_connections=None))

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if isinstance(event, bytes):
            event = event.decode()
        answer = client.post(
            f"{runtime_url}/invoke", json={"function": asdict(Function.of(self)), "event": event}
        )
        answer.raise_for_status()
        got = answer.json()
        return got["payload"], bool(got["errored"]), ""

    with _lock:
        if _installed is None:
            _installed = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


class RuntimeServer:
    """The handlers' side of ``install_forwarding``: ``POST /invoke`` with ``{"function": Function fields,
    "event": ...}`` runs the registered handler and answers ``{"payload": str, "errored": bool}``. Loopback
    only; one thread per connection, so invocations run concurrently as separate Lambda instances do."""

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> RuntimeServer:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                payload, errored, _ = _run(Function(**body["function"]), body.get("event") or {})
                answer = json.dumps({"payload": payload, "errored": errored}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:  # invocations are in ``invocations``, not stderr
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, name="lambda-runtime", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def uninstall() -> None:
    global _installed
    from moto.awslambda.models import LambdaFunction

    with _lock:
        if _installed is not None:
            LambdaFunction._invoke_lambda = _installed  # type: ignore[method-assign]
            _installed = None
