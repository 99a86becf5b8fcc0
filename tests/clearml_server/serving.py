"""The HTTP side of the stand-in: a threaded ``http.server`` on 127.0.0.1 (a port the OS picks)
with a request log and fault switches, shared by the API server and the fileserver."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

FAULTS = (None, "401", "503", "stall", "gone")


@dataclass
class Request:
    """One request as the server saw it: method, path, endpoint (``tasks.create``), JSON body."""

    method: str
    path: str
    endpoint: str
    body: Any = None
    status: int = 0
    at: float = field(default_factory=time.monotonic)


class Server:
    """A background HTTP server. ``fault`` switches every later request to: ``"401"`` (refused
    credentials), ``"503"`` (maintenance), ``"stall"`` (no answer until the fault is cleared),
    ``"gone"`` (the port closed: connections refused). ``fault_when(predicate, fault)`` sets a
    fault when a request matching ``predicate`` arrives (that request gets it too). With ``tls``
    it serves HTTPS (the handshake runs in the request's thread: a client that refuses the
    certificate never blocks the server)."""

    def __init__(self, handle: Callable[[Request, dict[str, str], bytes], tuple[int, str, bytes]],
                 tls: ssl.SSLContext | None = None) -> None:
        self.log: list[Request] = []
        self.fault: str | None = None
        self._triggers: list[tuple[Callable[[Request], bool], str]] = []
        self._handle = handle
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def setup(self) -> None:
                if isinstance(self.request, ssl.SSLSocket):
                    self.request.do_handshake()  # fails here for a client refusing the certificate
                super().setup()

            def _serve(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up (the SDK's pooled connections at exit)

        self._httpd = Quiet(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def fault_when(self, predicate: Callable[[Request], bool], fault: str) -> None:
        assert fault in FAULTS
        self._triggers.append((predicate, fault))

    def requests(self, endpoint: str) -> list[Request]:
        """The logged requests to ``endpoint`` (e.g. ``"tasks.completed"``)."""
        with self._lock:
            return [r for r in self.log if r.endpoint == endpoint]

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        endpoint = path.rstrip("/").rsplit("/", 1)[-1]
        try:
            body: Any = json.loads(raw) if raw and raw[:1] in b"[{" else None
        except ValueError:
            body = None
        request = Request(handler.command, handler.path, endpoint, body)
        with self._lock:
            self.log.append(request)
            for predicate, fault in list(self._triggers):
                if predicate(request):
                    self.fault = fault
                    self._triggers.remove((predicate, fault))
        if self.fault == "gone":
            self.stop()
            handler.close_connection = True
            return
        while self.fault == "stall":
            time.sleep(0.05)
        if self.fault in ("401", "503"):
            code = int(self.fault)
            status, ctype, data = code, "application/json", json.dumps(
                {"meta": {"result_code": code, "result_subcode": 22 if code == 401 else 0,
                          "result_msg": "unauthorized" if code == 401 else "maintenance"}}).encode()
        else:
            status, ctype, data = self._handle(request, dict(handler.headers), raw)
        request.status = status
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def stop(self) -> None:
        """Close the port (later connections are refused); idempotent."""
        if self._httpd.socket.fileno() != -1:
            threading.Thread(target=self._httpd.shutdown, daemon=True).start()
            self._httpd.socket.close()
