"""The HTTP side of `make run`: Chalice's local API Gateway, whose own answers (an unknown
route's 403, the CORS preflight to OPTIONS, a malformed request's error) carry the same security
headers as the app's (app.SECURITY_HEADERS, and Cache-Control: no-store when the answer set none).
The app's answers already have them; a header an answer set is never replaced."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Set

#: Added to every answer that has no Cache-Control of its own (the app's middleware does the same).
CACHE_CONTROL = "no-store"


def handler_class(security_headers: Mapping[str, str]) -> Any:
    """Chalice's request handler, adding `security_headers` to whatever it answers."""
    from chalice.local import ChaliceRequestHandler

    defaults: Dict[str, str] = {**dict(security_headers), "Cache-Control": CACHE_CONTROL}

    class SecureRequestHandler(ChaliceRequestHandler):
        _sent: Set[str]

        def send_response(self, code: int, message: Any = None) -> None:
            self._sent = set()
            super().send_response(code, message)

        def send_header(self, keyword: str, value: str) -> None:
            if hasattr(self, "_sent"):
                self._sent.add(keyword.lower())
            super().send_header(keyword, value)

        def end_headers(self) -> None:
            sent = getattr(self, "_sent", set())
            for name, value in defaults.items():
                if name.lower() not in sent:
                    super().send_header(name, value)
            self._sent = set()
            super().end_headers()

    return SecureRequestHandler


def create_server(app: Any, chalice_config: Any, host: str, port: int, security_headers: Mapping[str, str]) -> Any:
    """chalice.local.create_local_server, with the security headers on every answer."""
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    if not isinstance(app, LocalChalice):  # what create_local_server does, once per app
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, chalice_config, host, port, handler_cls=handler_class(security_headers))
