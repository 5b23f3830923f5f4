"""The local stack's embedded AWS (a moto server) in a process of its own.

The hub's handlers, the event source pollers and the sandboxes run in the local stack's process; moto
answering their AWS calls ran there too, in threads of the same interpreter, and at month end the two
together wanted more than one core. Here moto gets its own process (and so the machine's second core):

- ``python -m local.embedded_aws --port P --runtime-url U`` serves moto on ``127.0.0.1:P`` with the local
  stack's speed-ups (``local/moto_speedups.py``), each client connection kept open between requests
  (``_KeepAliveWsgi``); it hands every Lambda invocation (Invoke, Step Functions tasks) to the handlers'
  process at ``U`` (``lambda_runtime.install_forwarding``) and leaves SQS -> Lambda to the local stack's
  pollers: moto's own trigger (one message at a time inside SendMessage, failures dropped) is off;
- ``EmbeddedAws`` starts it from the local stack, waits until it answers, and stops it; the process also
  stops by itself when the process that started it is gone (a killed ``make local`` leaves nothing behind).

Everything reaches it over HTTP, as before: boto3 and the AWS CLI with ``--endpoint-url``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 60.0


class EmbeddedAws:
    """``EmbeddedAws(port, runtime_url).start()`` -> the moto server process, answering on ``endpoint``."""

    def __init__(self, port: int, runtime_url: str, *, quiet: bool = True) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._command = [
            sys.executable,
            "-m",
            "local.embedded_aws",
            "--port",
            str(port),
            "--runtime-url",
            runtime_url,
            "--parent-pid",
            str(os.getpid()),
            *(["--quiet"] if quiet else []),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> EmbeddedAws:
        import httpx

        # moto's Step Functions call its own server's Lambda and SQS through boto3 at MOTO_PORT
        env = dict(os.environ, MOTO_PORT=str(self.port))
        self._process = subprocess.Popen(self._command, cwd=ROOT, env=env)
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the embedded AWS exited with {self._process.returncode} while starting")
            try:
                httpx.get(f"{self.endpoint}/moto-api/data.json", timeout=2).raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the embedded AWS did not answer on {self.endpoint}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


class _KeepAliveWsgi(BaseHTTPRequestHandler):
    """A WSGI request handler that keeps each connection open between requests (HTTP/1.1), one thread per
    connection: werkzeug's development server, moto's own, closes every one, so each AWS call cost a TCP
    connection, a server thread and the accepting thread's turn at the GIL. Request bodies are read whole by
    their Content-Length (every AWS SDK request has one; a chunked body is refused with 411) and responses
    are sent with theirs."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms wait for the first's ACK
    app: Any = None

    def _serve(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.send_error(411, "send a Content-Length (chunked request bodies are not supported here)")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer.update(status=status, headers=headers)
            return lambda data: None  # the legacy write(): moto never calls it

        chunks = self.app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        code, _, reason = answer["status"].partition(" ")
        self.send_response(int(code), reason)
        headers = [
            (k, v) for k, v in answer["headers"] if k.lower() not in ("connection", "transfer-encoding")
        ]
        for name, value in headers:
            self.send_header(name, value)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class Server:
    """moto's WSGI application (as ``ThreadedMotoServer`` builds it) served by ``_KeepAliveWsgi``."""

    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        handler = type(
            "MotoHandler", (_KeepAliveWsgi,), {"app": DomainDispatcherApplication(create_backend_app)}
        )
        self._httpd = _Server(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="moto", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def no_queue_triggers() -> None:
    """moto invokes a queue's mapped function inside SendMessage; the local stack's pollers do it instead
    (batches, partial failures, the DLQ). A queue's mapping table reads empty and keeps nothing."""
    from moto.sqs import models

    models.Queue.lambda_event_source_mappings = property(  # type: ignore[assignment]
        lambda self: {}, lambda self, value: None
    )


def _watch_parent(parent: int, stopped: threading.Event) -> None:
    while not stopped.wait(1.0):
        if os.getppid() != parent:
            stopped.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.embedded_aws", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runtime-url", required=True, help="where the handlers run (lambda_runtime)")
    parser.add_argument("--parent-pid", type=int, default=0, help="stop when this process is gone")
    parser.add_argument("--quiet", action="store_true", help="moto's error logs of Fail states off")
    args = parser.parse_args(argv)

    from local import lambda_runtime, moto_speedups

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    if args.quiet:  # moto logs every Fail state (a parked deal) as an error; the ledger tells it better
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    moto_speedups.install()
    no_queue_triggers()
    lambda_runtime.install_forwarding(args.runtime_url)
    server = Server(args.port)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    # Ctrl-C reaches the whole process group: the parent finishes with us, then stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stopped), daemon=True).start()
    while not stopped.wait(1.0):
        pass
    server.stop()


if __name__ == "__main__":
    main()
