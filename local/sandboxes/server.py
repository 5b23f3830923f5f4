"""Serve any Sandbox on a loopback port, with an admin surface under /__sandbox/.

Requests are translated to `httpx.Request`, answered by `Sandbox.handle` and written back. An injected timeout
(or lost response) is made real: the server stalls past the client's timeout ("stall") or closes the
connection without an answer ("drop"), as `Faults.loopback_timeout` says.

Admin surface (JSON, never recorded in the sandbox's request log):
    GET  /__sandbox/requests[?method=&path_contains=]  the recorded requests
    GET  /__sandbox/stats                               counters, peak in-flight, current faults
    GET  /__sandbox/state                               every record
    POST /__sandbox/faults                              change fault settings (keys not given are kept)
    POST /__sandbox/seed                                seed records (vendor payload), answers the ids
    POST /__sandbox/reset                               back to freshly constructed

Run one from a shell: `python -m local.sandboxes.server netsuite --port 8003` (vendors: salesforce, kantata,
netsuite, business_central, workday).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from local.sandboxes.base import Faults, Sandbox

ADMIN_PREFIX = "/__sandbox/"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class SandboxServer:
    """One sandbox on 127.0.0.1 (a free port unless one is given). Use as a context manager or start/stop."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self._requested_port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (still known after stop, so a test can check it is released)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self.host, self._requested_port), _handler_class(self))
        self._port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.sandbox.vendor}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin surface
    def admin(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Answer an admin request: (status, JSON payload)."""
        sandbox = self.sandbox
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "requests"): lambda: {
                "requests": [
                    r.to_dict() for r in sandbox.calls(query.get("method"), query.get("path_contains"))
                ]
            },
            ("GET", "stats"): sandbox.stats,
            ("GET", "state"): sandbox.state,
            ("POST", "faults"): lambda: sandbox.set_faults(
                Faults.from_dict(body or {}, sandbox.faults)
            ).to_dict(),
            ("POST", "seed"): lambda: sandbox.seed(body or {}),
            ("POST", "reset"): lambda: sandbox.reset() or {"reset": True},
        }
        action = routes.get((method, path[len(ADMIN_PREFIX) :].strip("/")))
        if action is None:
            return 404, {"error": f"no admin endpoint {method} {path}"}
        try:
            return 200, action()
        except (ValueError, TypeError, KeyError) as error:
            return 400, {"error": str(error)}

    def stall(self) -> None:
        """Hold an injected timeout open past the client's timeout (or until the server stops)."""
        self._stopping.wait(self.sandbox.faults.stall_seconds)


def _handler_class(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self._serve()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            content = self.rfile.read(length) if length else b""
            host = self.headers.get("Host") or f"{server.host}:{server.port}"
            request = httpx.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
                content=content,
            )
            if request.url.path.startswith(ADMIN_PREFIX):
                self._admin(request, content)
                return
            try:
                response = server.sandbox.handle(request)
            except httpx.TimeoutException:
                self._no_answer()
                return
            except Exception as error:  # a sandbox bug: say so instead of dropping the connection
                traceback.print_exc()
                payload = {"error": f"{server.sandbox.vendor} sandbox failed: {error!r}"}
                self._write(500, [], json.dumps(payload).encode(), json_body=True)
                return
            self._write(response.status_code, response.headers.multi_items(), response.content)

        def _admin(self, request: httpx.Request, content: bytes) -> None:
            try:
                body = json.loads(content) if content else None
            except ValueError:
                self._write(400, [], json.dumps({"error": "body is not JSON"}).encode(), json_body=True)
                return
            status, payload = server.admin(self.command, request.url.path, dict(request.url.params), body)
            self._write(status, [], json.dumps(payload, default=str).encode(), json_body=True)

        def _no_answer(self) -> None:
            if server.sandbox.faults.loopback_timeout == "stall":
                server.stall()
            self.close_connection = True

        def _write(
            self, status: int, headers: list[tuple[str, str]], body: bytes, *, json_body: bool = False
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if json_body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

    return Handler


VENDORS = ("salesforce", "kantata", "netsuite", "business_central", "workday")


def _build(vendor: str) -> Sandbox:
    from local.sandboxes.business_central import BusinessCentralSandbox
    from local.sandboxes.kantata import KantataSandbox
    from local.sandboxes.netsuite import NetSuiteSandbox
    from local.sandboxes.salesforce import SalesforceSandbox
    from local.sandboxes.workday import WorkdaySandbox

    factories: dict[str, Callable[[], Sandbox]] = {
        "salesforce": SalesforceSandbox,
        "kantata": KantataSandbox,
        "netsuite": NetSuiteSandbox,
        "business_central": BusinessCentralSandbox,
        "workday": WorkdaySandbox,
    }
    return factories[vendor]()


def main(argv: list[str] | None = None) -> None:
    """Serve one sandbox until interrupted."""
    parser = argparse.ArgumentParser(description="Serve a SaaS sandbox on loopback.")
    parser.add_argument("vendor", choices=VENDORS)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with SandboxServer(_build(args.vendor), port=args.port) as running:
        print(f"{args.vendor} sandbox on {running.url} (admin: {running.url}{ADMIN_PREFIX}stats)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
