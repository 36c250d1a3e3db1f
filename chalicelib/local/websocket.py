"""The live updates' WebSocket API for `make run` (and the browser tests): what API Gateway does
in AWS, on 127.0.0.1:PUSH_PORT, calling the app's own WebSocket handlers (the functions Chalice
deploys, found in `app.handler_map`) with API Gateway's event shape:

- `GET /local?token=...` with `Upgrade: websocket`: $connect; a non-2xx answer refuses the
  upgrade (403), as API Gateway does. Text frames go to $default, the close to $disconnect.
- The management API the fan-out calls through botocore (`apigatewaymanagementapi` with
  endpoint_url `http://127.0.0.1:PUSH_PORT/local`): `POST /local/@connections/{id}` sends a text
  frame, `DELETE` closes the socket (its $disconnect runs), `GET` answers 200 or 410 (gone).

Standard library only (RFC 6455 text frames, ping/pong, close; no extensions). The token in the
query string is never logged: this server logs no request line at all.
"""
from __future__ import annotations

import base64
import hashlib

import os
import secrets
import socket
import struct
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

STAGE = "local"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Frames larger than this close the socket (API Gateway's frame limit is 32 KB).
MAX_FRAME_BYTES = 32 * 1024
ROUTES = {"$connect": "CONNECT", "$default": "MESSAGE", "$disconnect": "DISCONNECT"}


class _Socket:
    """One open connection: frames out are serialised by a lock (hints and the reader's pongs)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.open = True

    def send(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([size])
        elif size < 65536:
            header += bytes([126]) + struct.pack("!H", size)
        else:
            header += bytes([127]) + struct.pack("!Q", size)
        with self.lock:
            self.connection.sendall(header + payload)

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                self.send(0x8, struct.pack("!H", 1000))
            except OSError:
                pass
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_exact(stream: Any, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise EOFError
    return data


def read_frame(stream: Any) -> Tuple[int, bytes]:
    """(opcode, payload) of one client frame (masked, as RFC 6455 requires of clients)."""
    first, second = _read_exact(stream, 2)
    opcode, size = first & 0x0F, second & 0x7F
    if size == 126:
        size = struct.unpack("!H", _read_exact(stream, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _read_exact(stream, 8))[0]
    if size > MAX_FRAME_BYTES or not second & 0x80:
        raise EOFError
    mask = _read_exact(stream, 4)
    data = _read_exact(stream, size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class WebSocketServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: Any, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.app = app
        self.sockets: Dict[str, _Socket] = {}
        self.lock = threading.Lock()
        self.sent = 0  # frames posted through the management API (benches count them)
        self.received = 0  # messages from the pages
        #: While set, upgrades are answered 503 (an outage: the browser tests' fallback to polling).
        self.refusing = False

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/{STAGE}"

    def handler(self, route: str) -> Optional[Callable[[Dict[str, Any], Any], Any]]:
        config = getattr(self.app, "websocket_handlers", {}).get(route)
        return self.app.handler_map.get(config.name) if config is not None else None

    def invoke(self, route: str, connection_id: str, **extra: Any) -> Dict[str, Any]:
        """Call the app's handler of `route` as API Gateway would; its answer (200 if none)."""
        handler = self.handler(route)
        if handler is None:
            return {"statusCode": 200}
        from chalicelib.local.pump import LambdaContext

        host, port = self.server_address[:2]
        event = {"requestContext": {"routeKey": route, "eventType": ROUTES[route], "connectionId": connection_id,
                                    "domainName": f"{host}:{port}", "stage": STAGE, "apiId": "local",
                                    "requestId": str(uuid.uuid4())}, "isBase64Encoded": False, **extra}
        answer = handler(event, LambdaContext(self.handler_name(route)))
        return answer if isinstance(answer, dict) else {"statusCode": 200}

    def handler_name(self, route: str) -> str:
        return self.app.websocket_handlers[route].name


class _Handler(BaseHTTPRequestHandler):
    server: WebSocketServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # never a request line: it would hold the token
        pass

    # --- the management API ----------------------------------------------------------------
    def _management(self) -> Optional[str]:
        path = urlsplit(self.path).path
        prefix = f"/{STAGE}/@connections/"
        return unquote(path[len(prefix):]) if path.startswith(prefix) else None

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        connection_id = self._management()
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.server.sockets.get(connection_id or "")
        if connection_id is None:
            return self._answer(404)
        if target is None or not target.open:
            return self._answer(410, b'{"message": "gone"}')
        try:
            target.send(0x1, data)
        except OSError:
            return self._answer(410, b'{"message": "gone"}')
        self.server.sent += 1
        self._answer(200)

    def do_DELETE(self) -> None:
        connection_id = self._management()
        target = self.server.sockets.get(connection_id or "")
        if connection_id is None:
            return self._answer(404)
        if target is None:
            return self._answer(410, b'{"message": "gone"}')
        target.close()
        self._answer(204)

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self._upgrade()
        connection_id = self._management()
        if connection_id is None:
            return self._answer(404)
        self._answer(200 if connection_id in self.server.sockets else 410, b"{}")

    # --- a page's socket -------------------------------------------------------------------
    def _upgrade(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != f"/{STAGE}" or not key:
            return self._answer(404)
        if self.server.refusing:
            return self._answer(503)
        connection_id = base64.b64encode(secrets.token_bytes(12)).decode().replace("/", "_").replace("+", "-")
        query = dict(parse_qsl(parts.query))
        answer = self.server.invoke("$connect", connection_id, queryStringParameters=query or None,
                                    headers={k: v for k, v in self.headers.items()})
        if not 200 <= int(answer.get("statusCode", 200)) < 300:
            return self._answer(403, b'{"message": "Forbidden"}')
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        sock = _Socket(self.connection)
        with self.server.lock:
            self.server.sockets[connection_id] = sock
        try:
            self._frames(connection_id, sock)
        finally:
            with self.server.lock:
                self.server.sockets.pop(connection_id, None)
            sock.open = False
            self.close_connection = True
            self.server.invoke("$disconnect", connection_id)

    def _frames(self, connection_id: str, sock: _Socket) -> None:
        while sock.open:
            try:
                opcode, payload = read_frame(self.rfile)
            except (EOFError, OSError, ValueError):
                return
            if opcode == 0x8:
                sock.close()
                return
            if opcode == 0x9:
                sock.send(0xA, payload)
            elif opcode == 0x1:
                body = payload.decode("utf-8", "replace")
                self.server.received += 1
                try:
                    self.server.invoke("$default", connection_id, body=body)
                except Exception as error:  # noqa: BLE001 - a failing handler never ends the server
                    from chalicelib.logs import describe_error, logger

                    logger.warning("local websocket handler failed", extra={"error": describe_error(error)[:300]})


def start(app: Any, host: str = "127.0.0.1", port: int = 0) -> WebSocketServer:
    """Serve `app`'s WebSocket handlers in a daemon thread; sets PUSH_ENDPOINT for this process."""
    from chalicelib import config

    server = WebSocketServer(app, host, port)
    threading.Thread(target=server.serve_forever, name="push-websocket", daemon=True).start()
    os.environ[config.PUSH_ENDPOINT_ENV] = server.endpoint
    return server





class Client:
    """A minimal WebSocket client of this server (the bench and tests; the page uses the browser's):
    text frames only, masked as RFC 6455 requires. ConnectionRefusedError when the upgrade is refused."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        path = parts.path + ("?" + parts.query if parts.query else "")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.stream = self.sock.makefile("rb")
        status = self.stream.readline().decode("latin-1")
        while self.stream.readline() not in (b"\r\n", b""):
            pass
        if " 101 " not in status:
            self.sock.close()
            raise ConnectionRefusedError(status.strip())

    def send(self, text: str) -> None:
        payload, mask = text.encode(), secrets.token_bytes(4)
        size = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self, timeout: float = 10.0) -> Optional[str]:
        """The next text message; None when the server closed the socket."""
        self.sock.settimeout(timeout)
        while True:
            try:
                first, second = _read_exact(self.stream, 2)
            except (EOFError, OSError):
                return None
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", _read_exact(self.stream, 2))[0]
            elif size == 127:
                size = struct.unpack("!Q", _read_exact(self.stream, 8))[0]
            payload = _read_exact(self.stream, size)
            if first & 0x0F == 0x8:
                return None
            if first & 0x0F == 0x1:
                return payload.decode()

    def close(self) -> None:
        try:
            self.sock.sendall(bytes([0x88, 0x82]) + b"\0\0\0\0" + struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
