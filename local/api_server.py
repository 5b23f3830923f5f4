"""Serving the template's API Gateway routes on loopback: each request becomes the REST proxy event the
deployed function receives, and the function is invoked through moto's Lambda API (so it runs the same way
as from API Gateway, Step Functions or SQS). moto stores the REST API but serves no stage; this fills that.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.template import Route

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's own payload limit


class _Compiled:
    def __init__(self, route: Route, function_name: str) -> None:
        self.route = route
        self.function_name = function_name
        names = re.findall(r"{([^}+]+)\+?}", route.path)
        pattern = re.sub(r"{[^}]+}", "([^/]+)", route.path)
        self.names = names
        self.regex = re.compile(f"^{pattern}$")


class ApiServer:
    """``ApiServer(routes, function_names, lambda_client).start()``; ``.url`` is the base (no stage prefix)."""

    def __init__(
        self,
        routes: list[Route],
        function_names: dict[str, str],
        lambda_client: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "live",
    ) -> None:
        self.stage = stage
        self._routes = [_Compiled(r, function_names[r.function_logical_id]) for r in routes]
        self._lambda = lambda_client
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: the hub logs what matters
                return

            def _serve(self) -> None:
                server._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- one request -------------------------------------------------------------------------------------
    def _dispatch(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        path = split.path
        if path.startswith(f"/{self.stage}/"):  # accept the stage-prefixed URL a deployed API has too
            path = path[len(self.stage) + 1 :]
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self._reply(request, 413, {"message": "Request Too Long"})
            return
        body = request.rfile.read(length) if length else b""
        match = None
        for compiled in self._routes:
            found = compiled.regex.match(path)
            if found and compiled.route.method == request.command:
                match = (compiled, dict(zip(compiled.names, found.groups(), strict=True)))
                break
        if match is None:
            known = any(c.regex.match(path) for c in self._routes)
            self._reply(
                request,
                405 if known else 404,
                {"message": "Method Not Allowed" if known else "Missing Authentication Token"},
            )
            return
        compiled, params = match
        if compiled.route.authorization == "AWS_IAM" and not request.headers.get(
            "Authorization", ""
        ).startswith(
            "AWS4-HMAC-SHA256"
        ):  # the local stack checks that the caller signed (SigV4), not the signature itself
            self._reply(request, 403, {"message": "Missing Authentication Token"})
            return
        event = self._event(request, compiled.route, path, split.query, params, body)
        started = time.perf_counter()
        answer = self._lambda.invoke(FunctionName=compiled.function_name, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            self._reply(request, 502, {"message": "Internal server error"})
            return
        headers = dict(payload.get("headers") or {})
        for key, values in (payload.get("multiValueHeaders") or {}).items():
            headers[key] = values[-1]
        raw = payload.get("body") or ""
        data = base64.b64decode(raw) if payload.get("isBase64Encoded") else raw.encode()
        headers["X-Local-Latency-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
        self._send(request, int(payload["statusCode"]), data, headers)

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        route: Route,
        path: str,
        query: str,
        params: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        headers = {k: v for k, v in request.headers.items()}
        multi: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi.setdefault(key, []).append(value)
        qs = parse_qs(query, keep_blank_values=True)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        request_id = str(uuid.uuid4())
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": request.command,
            "headers": headers,
            "multiValueHeaders": multi,
            "queryStringParameters": {k: v[-1] for k, v in qs.items()} or None,
            "multiValueQueryStringParameters": qs or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": request.command,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": request_id,
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": request.client_address[0]},
                "accountId": "123456789012",
                "apiId": "local",
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._send(request, status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        request.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                request.send_header(key, str(value))
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
