"""A loopback sandbox of the platforms' send APIs, so the whole reply loop runs offline.

`start(webhook_base_url)` serves, on 127.0.0.1 only, the endpoints our adapters call (Meta Graph
for Messenger / Instagram / Facebook comments / WhatsApp, Instagram Graph, X API v2, Telegram Bot
API, LinkedIn REST) and returns the base-URL settings that point the adapters at it:

    server, env = sandbox.start("http://127.0.0.1:8000")
    os.environ.update(env)          # META_GRAPH_BASE_URL, INSTAGRAM_GRAPH_BASE_URL, X_API_BASE_URL, ...
    ...
    server.close()

It answers like the platform (status codes, bodies, ids in the platform's format) and then, where
the platform really does so, calls our webhook back (POST <webhook>/webhooks/<adapter>) with a
correctly signed delivery a little later:
- Messenger: message_echoes (`is_echo`, the `metadata` we sent), then delivery, then read.
- Instagram DMs: the echo, then a read event.
- WhatsApp: statuses sent -> delivered -> read (with `biz_opaque_callback_data`), or `failed`
  with the error Meta reports asynchronously (131047 window, 131026 undeliverable).
- X: the Account Activity echo of our own DM (when the access token names the user, as X's
  "<user id>-..." tokens do) and of our reply post.
- Telegram and LinkedIn send nothing back for a bot's / organization's own message: neither here.
Comment replies and private replies get no webhook here (the sandbox does not know the post or
the commenter's PSID a real delivery would carry).

Failures, chosen by the target id (recipient, comment, chat, participant, post URN) containing:
- "fail-429-once": throttled the first time (the platform's own throttling answer), then fine;
- "fail-blocked": the recipient blocked us / cannot be reached (Meta 551, WhatsApp async 131026,
  X 403, Telegram 403 "bot was blocked by the user", LinkedIn 403);
- "fail-token": the token is expired or revoked (Meta 190, 401 elsewhere);
- "fail-window": outside the messaging window (Meta 10/2018278, Instagram 10/2534022, WhatsApp
  async 131047; X, Telegram and LinkedIn have no window: sent normally);
- "fail-timeout": the message is accepted and echoed at once, the answer only after
  `slow_seconds` (longer than the adapters' read timeout): the outbox must reconcile, not resend;
- "fail-5xx": accepted and echoed, answered 502 without a body.

Bounded: request bodies up to 1 MB, at most MAX_TIMERS pending callbacks (extra ones are dropped
and counted), daemon threads only, callbacks only to a loopback webhook URL, `close()` cancels
every pending callback. Tokens are never printed (the request log is silenced).
"""
from __future__ import annotations

import argparse
import base64
import collections
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

GRAPH_VERSION = "v21.0"
MAX_BODY_BYTES = 1_000_000
MAX_TIMERS = 500
MAX_REMEMBERED = 1000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
FAILURES = ("fail-429-once", "fail-blocked", "fail-token", "fail-window", "fail-timeout", "fail-5xx")
WABA_ID = "300000000000001"

Answer = Tuple[int, Any, Dict[str, str]]  # status, JSON body (None: empty), extra headers


def start(webhook_base_url: Optional[str], port: int = 0, delay: float = 0.4, slow_seconds: float = 25.0,
          secrets: Optional[Callable[[str], Optional[str]]] = None) -> Tuple["Sandbox", Dict[str, str]]:
    """Serve the sandbox on 127.0.0.1:`port` (0: any free port) in a daemon thread. Callbacks go
    to `webhook_base_url` (loopback only; None: no callbacks), the first `delay` seconds after the
    answer, signed with `secrets` (default the runtime's secret lookup, what our webhook checks).
    Returns the server and the base-URL settings for the adapters."""
    server = Sandbox(port, webhook_base_url, delay, slow_seconds, secrets)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="platform-sandbox", daemon=True)
    thread.start()
    return server, server.env()


class Sandbox(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, webhook_base_url: Optional[str], delay: float, slow_seconds: float,
                 secrets: Optional[Callable[[str], Optional[str]]]) -> None:
        if webhook_base_url is not None:
            parts = urlsplit(webhook_base_url)
            host = parts.hostname
            if host in ("0.0.0.0", "::"):  # our API listens everywhere: call it on loopback
                webhook_base_url = f"{parts.scheme}://127.0.0.1:{parts.port}{parts.path}"
                host = "127.0.0.1"
            if host not in LOOPBACK_HOSTS:
                raise ValueError("the sandbox calls back loopback webhooks only")
            webhook_base_url = webhook_base_url.rstrip("/")
        super().__init__(("127.0.0.1", port), _Handler)
        self.webhook_base_url = webhook_base_url
        self.delay = max(0.0, min(delay, 30.0))
        self.slow_seconds = max(0.0, min(slow_seconds, 120.0))
        self._secrets = secrets
        self._lock = threading.Lock()
        self._timers: set = set()
        self._closed = False
        self._throttled: "collections.OrderedDict[str, None]" = collections.OrderedDict()
        self._telegram_ids = itertools.count(1000)
        self.requests: Deque[Dict[str, Any]] = collections.deque(maxlen=200)  # what was asked (no tokens)
        self.callbacks: Deque[Dict[str, Any]] = collections.deque(maxlen=200)  # what was delivered
        self.dropped_callbacks = 0

    # --- configuration ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def env(self) -> Dict[str, str]:
        base = self.base_url
        return {
            "META_GRAPH_BASE_URL": f"{base}/graph/{GRAPH_VERSION}",
            "INSTAGRAM_GRAPH_BASE_URL": f"{base}/instagram/{GRAPH_VERSION}",
            "X_API_BASE_URL": f"{base}/x",
            "TELEGRAM_API_BASE_URL": f"{base}/telegram",
            "LINKEDIN_API_BASE_URL": f"{base}/linkedin",
        }

    def shutdown(self) -> None:
        """Stop serving and cancel every pending callback (call from another thread than
        serve_forever's, like ThreadingHTTPServer.shutdown)."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()
        super().shutdown()

    def close(self) -> None:
        """shutdown() and release the port."""
        self.shutdown()
        self.server_close()

    # --- failures --------------------------------------------------------------------------------

    def failure(self, platform: str, target: Any) -> Optional[str]:
        """The failure a target id asks for ("429-once" only the first time), else None."""
        text = str(target or "")
        for name in FAILURES:
            if name in text:
                if name != "fail-429-once":
                    return name[len("fail-"):]
                key = f"{platform}|{text}"
                with self._lock:
                    if key in self._throttled:
                        return None
                    self._throttled[key] = None
                    while len(self._throttled) > MAX_REMEMBERED:
                        self._throttled.popitem(last=False)
                return "429-once"
        return None

    def next_telegram_id(self) -> int:
        with self._lock:
            return next(self._telegram_ids)

    # --- callbacks -------------------------------------------------------------------------------

    def later(self, seconds: float, adapter: str, payload: Dict[str, Any]) -> None:
        """Deliver `payload` to /webhooks/<adapter>, correctly signed, `seconds` from now."""
        if self.webhook_base_url is None:
            return
        with self._lock:
            if self._closed:
                return
            if len(self._timers) >= MAX_TIMERS:
                self.dropped_callbacks += 1
                return
            timer = threading.Timer(seconds, self._fire)
            timer.args = (adapter, payload, timer)
            timer.daemon = True
            self._timers.add(timer)
        timer.start()

    def _fire(self, adapter: str, payload: Dict[str, Any], timer: Any = None) -> None:
        with self._lock:
            self._timers.discard(timer)
            if self._closed:
                return
        self.deliver(adapter, payload)

    def deliver(self, adapter: str, payload: Dict[str, Any]) -> Optional[int]:
        from chalicelib.channels import get_adapter

        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        secrets = self._secrets
        if secrets is None:
            from chalicelib.runtime import runtime

            secrets = runtime.secret
        headers = {"Content-Type": "application/json", **get_adapter(adapter).signed_headers(raw, secrets)}
        request = urllib.request.Request(f"{self.webhook_base_url}/webhooks/{adapter}", data=raw,
                                         headers=headers, method="POST")
        status: Optional[int]
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError):
            status = None
        self.callbacks.append({"adapter": adapter, "payload": payload, "status": status})
        return status

    def handle_error(self, request: Any, client_address: Any) -> None:  # no tracebacks with tokens
        pass


class _Handler(BaseHTTPRequestHandler):
    server: Sandbox
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - paths carry Telegram tokens
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/x/2/tweets/search/recent":  # listening: seeded posts (chalicelib.local.listening_seed)
            from chalicelib.local.listening_seed import x_recent_search

            self._answer(x_recent_search({k: v[-1] for k, v in parse_qs(parts.query).items()}))
            return
        self._answer((404, {"error": "the sandbox serves send endpoints and X recent search only"}, {}))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            self._answer((413, {"error": "body too large"}, {}))
            return
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body: Dict[str, Any] = {}
        if raw:
            try:
                decoded = json.loads(raw)
                body = decoded if isinstance(decoded, dict) else {}
            except ValueError:
                body = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        segments = [unquote(s) for s in parts.path.split("/") if s]
        platform = segments[0] if segments else ""
        self.server.requests.append({"platform": platform, "path": _redacted(parts.path), "query": query,
                                     "body": body, "auth": _auth_kind(self.headers.get("Authorization"))})
        handler = ROUTES.get(platform)
        try:
            answer = handler(self, segments[1:], query, body) if handler else None
        except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500 with its reason
            answer = (500, {"error": f"sandbox error: {type(exc).__name__}: {exc}"}, {})
        self._answer(answer or (404, {"error": f"no such endpoint: {_redacted(parts.path)}"}, {}))

    def _answer(self, answer: Answer) -> None:
        status, payload, headers = answer
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def bearer(self) -> Optional[str]:
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() or None if value.startswith("Bearer ") else None

    def slow(self) -> None:
        time.sleep(self.server.slow_seconds)


def _redacted(path: str) -> str:
    return "/".join("bot<token>" if p.startswith("bot") and ":" in unquote(p) else p for p in path.split("/"))


def _auth_kind(header: Optional[str]) -> str:
    if not header:
        return "none"
    return header.split(" ", 1)[0]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _digits(count: int) -> str:
    return str(random.randint(1, 9)) + "".join(random.choice("0123456789") for _ in range(count - 1))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


# --- Meta Graph (Messenger, Instagram, Facebook comments, WhatsApp) -----------------------------


def _graph_error(status: int, code: int, message: str, subcode: Optional[int] = None,
                 headers: Optional[Dict[str, str]] = None) -> Answer:
    error: Dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": _b64(_digits(12))[:11]}
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}, headers or {}


def _meta_failure(failure: Optional[str], instagram: bool) -> Optional[Answer]:
    if failure == "429-once":
        usage = json.dumps({"call_count": 100, "total_cputime": 12, "total_time": 20})
        return _graph_error(400, 613, "Calls to this api have exceeded the rate limit.", headers={"X-App-Usage": usage})
    if failure == "blocked":
        return _graph_error(400, 551, "This person isn't available right now.", 1545041)
    if failure == "token":
        return _graph_error(401, 190, "Error validating access token: Session has expired.", 463)
    if failure == "window":
        return _graph_error(400, 10, "This message is sent outside of allowed window.",
                            2534022 if instagram else 2018278)
    return None


def _graph(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any],
           instagram: bool = False) -> Optional[Answer]:
    if len(path) != 3:
        return None
    _version, node, edge = path
    if not (handler.bearer() or query.get("access_token") or body.get("access_token")):
        return _graph_error(400, 190, "An active access token must be used to query information about the current user.")
    if edge == "messages":
        if body.get("messaging_product") == "whatsapp":
            return _whatsapp(handler, node, body)
        return _send_api(handler, node, body, instagram)
    if edge in ("comments", "replies"):
        failure = handler.server.failure("meta", node)
        text = query.get("message") or body.get("message")
        if not text:
            return _graph_error(400, 100, "(#100) The parameter message is required")
        early = _meta_failure(None if failure == "window" else failure, instagram)
        if early:
            return early
        if failure == "timeout":
            handler.slow()
        if failure == "5xx":
            return 502, None, {}
        new_id = _digits(17) if edge == "replies" else f"{node.split('_')[0]}_{_digits(16)}"
        return 200, {"id": new_id}, {}
    return None


def _send_api(handler: _Handler, node: str, body: Dict[str, Any], instagram: bool) -> Answer:
    recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    target = recipient.get("id") or recipient.get("comment_id")
    if not target or not isinstance(message.get("text"), str):
        return _graph_error(400, 100, "(#100) Param recipient and message[text] must be non-empty")
    failure = handler.server.failure("meta", target)
    early = _meta_failure(failure, instagram)
    if early:
        return early
    now = _now_ms()
    if instagram:
        mid = _b64(f"ig_message_item:1:IGMessageData:{node}:{_digits(39)}")
    else:
        mid = "m_" + _b64(_digits(60))[:86]
    private = "comment_id" in recipient
    psid = recipient.get("id") or f"69{_digits(14)}"
    if not private and node != "me":
        _meta_callbacks(handler.server, node, str(psid), mid, message, now, instagram)
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 502, None, {}
    return 200, {"recipient_id": str(psid), "message_id": mid}, {}


def _meta_callbacks(server: Sandbox, account: str, psid: str, mid: str, message: Dict[str, Any], now: int,
                    instagram: bool) -> None:
    obj = "instagram" if instagram else "page"
    echo = {"mid": mid, "is_echo": True, "app_id": 1000000000000001, "text": message.get("text")}
    if message.get("metadata") is not None:
        echo["metadata"] = message["metadata"]

    def delivery(items: List[Dict[str, Any]], at: int) -> Dict[str, Any]:
        return {"object": obj, "entry": [{"id": account, "time": at, "messaging": items}]}

    step = server.delay
    server.later(step, "meta", delivery([{"sender": {"id": account}, "recipient": {"id": psid},
                                          "timestamp": now, "message": echo}], now))
    if instagram:
        server.later(3 * step, "meta", delivery([{"sender": {"id": psid}, "recipient": {"id": account},
                                                  "timestamp": now + 2000, "read": {"mid": mid}}], now + 2000))
        return
    server.later(2 * step, "meta", delivery([{"sender": {"id": psid}, "recipient": {"id": account},
                                              "timestamp": now + 1000,
                                              "delivery": {"mids": [mid], "watermark": now + 1000}}], now + 1000))
    server.later(3 * step, "meta", delivery([{"sender": {"id": psid}, "recipient": {"id": account},
                                              "timestamp": now + 2000, "read": {"watermark": now + 2000}}], now + 2000))


def _whatsapp(handler: _Handler, phone_number_id: str, body: Dict[str, Any]) -> Answer:
    to = body.get("to")
    kind = body.get("type")
    if not to or kind not in ("text", "template") or not isinstance(body.get(kind), dict):
        return _graph_error(400, 100, "(#100) Invalid parameter")
    failure = handler.server.failure("whatsapp", to)
    if failure == "429-once":
        return _graph_error(400, 130429, "(#130429) Rate limit hit")
    if failure == "token":
        return _graph_error(401, 190, "Error validating access token: Session has expired.", 463)
    wamid = "wamid." + base64.b64encode(f"\x15\x02\x00\x11\x18\x12{to}{_digits(20)}".encode()).decode("ascii")
    server = handler.server
    now = int(time.time())
    opaque = body.get("biz_opaque_callback_data")

    def status(state: str, at: int, errors: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        item: Dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(at), "recipient_id": str(to)}
        if opaque is not None:
            item["biz_opaque_callback_data"] = opaque
        if errors:
            item["errors"] = errors
        elif state == "sent":
            item["conversation"] = {"id": _digits(16), "origin": {"type": "service"}}
            item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100", "phone_number_id": phone_number_id},
            "statuses": [item]}}]}]}

    if failure in ("window", "blocked"):
        code, title, details = ((131047, "Re-engagement message", "Message failed to send because more than 24 "
                                 "hours have passed since the customer last replied to this number.")
                                if failure == "window" else
                                (131026, "Message undeliverable", "Unable to deliver message."))
        server.later(server.delay, "meta", status("failed", now, [{"code": code, "title": title, "message": title,
                                                                  "error_data": {"details": details}}]))
    else:
        server.later(server.delay, "meta", status("sent", now))
        server.later(2 * server.delay, "meta", status("delivered", now + 1))
        server.later(3 * server.delay, "meta", status("read", now + 2))
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 502, None, {}
    return 200, {"messaging_product": "whatsapp", "contacts": [{"input": str(to), "wa_id": str(to)}],
                 "messages": [{"id": wamid}]}, {}


def _graph_facebook(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    return _graph(handler, path, query, body, instagram=False)


def _graph_instagram(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    return _graph(handler, path, query, body, instagram=True)


# --- X API v2 ------------------------------------------------------------------------------------


def _x_user(handler: _Handler) -> Optional[str]:
    """Our user id: X access tokens read "<user id>-<secret part>" (OAuth 1.0a)."""
    header = handler.headers.get("Authorization") or ""
    if not header.startswith("OAuth "):
        return None
    for item in header[6:].split(","):
        name, _, value = item.strip().partition("=")
        if name == "oauth_token":
            user = unquote(value.strip('"')).split("-", 1)[0]
            return user if user.isdigit() else None
    return None


def _x_problem(status: int, title: str, detail: str, headers: Optional[Dict[str, str]] = None) -> Answer:
    return status, {"title": title, "detail": detail, "type": "about:blank", "status": status}, headers or {}


def _x(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    header = handler.headers.get("Authorization") or ""
    if not (header.startswith("OAuth ") or header.startswith("Bearer ")):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    is_dm = len(path) == 5 and path[:3] == ["2", "dm_conversations", "with"] and path[4] == "messages"
    is_post = path == ["2", "tweets"]
    if not (is_dm or is_post):
        return None
    text = body.get("text")
    if not isinstance(text, str) or not text:
        return _x_problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
    reply = body.get("reply") if isinstance(body.get("reply"), dict) else {}
    target = path[3] if is_dm else reply.get("in_reply_to_tweet_id")
    failure = handler.server.failure("x", target)
    if failure == "429-once":
        reset = str(int(time.time()) + 1)
        return _x_problem(429, "Too Many Requests", "Too Many Requests",
                          {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset})
    if failure == "token":
        return _x_problem(401, "Unauthorized", "Unauthorized")
    if failure == "blocked":
        detail = ("You are not permitted to send a message to this user." if is_dm else
                  "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
                  "engaged by the author of the post you are replying to.")
        return _x_problem(403, "Forbidden", detail)
    me = _x_user(handler)
    new_id = "18" + _digits(17)
    now = _now_ms()
    server = handler.server
    if is_dm:
        participant = str(target)
        conversation = "-".join(sorted([me or "0", participant]))
        answer: Dict[str, Any] = {"data": {"dm_conversation_id": conversation, "dm_event_id": new_id}}
        if me:
            server.later(server.delay, "x", {"for_user_id": me, "direct_message_events": [{
                "type": "message_create", "id": new_id, "created_timestamp": str(now),
                "message_create": {"target": {"recipient_id": participant}, "sender_id": me,
                                   "message_data": {"text": text, "entities": {"hashtags": [], "symbols": [],
                                                                               "user_mentions": [], "urls": []}}}}]})
    else:
        answer = {"data": {"id": new_id, "text": text, "edit_history_tweet_ids": [new_id]}}
        if me:
            server.later(server.delay, "x", {"for_user_id": me, "tweet_create_events": [{
                "id_str": new_id, "timestamp_ms": str(now), "text": text, "in_reply_to_status_id_str": str(target),
                "user": {"id_str": me, "screen_name": "acmecoffee", "name": "Acme Coffee"}}]})
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 503, None, {}
    return 201, answer, {}


# --- Telegram Bot API ----------------------------------------------------------------------------


def _telegram_error(code: int, description: str, **parameters: Any) -> Answer:
    body: Dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return code, body, {}


def _telegram(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    if len(path) != 2 or not path[0].startswith("bot"):
        return None
    bot_id, _, secret = path[0][3:].partition(":")
    if not bot_id.isdigit() or not secret:
        return _telegram_error(404, "Not Found")
    if path[1] != "sendMessage":
        return _telegram_error(404, "Not Found")
    chat = body.get("chat_id")
    text = body.get("text")
    if chat is None or not isinstance(text, str) or not text:
        return _telegram_error(400, "Bad Request: message text is empty")
    failure = handler.server.failure("telegram", chat)
    if failure == "429-once":
        return _telegram_error(429, "Too Many Requests: retry after 1", retry_after=1)
    if failure == "token":
        return _telegram_error(401, "Unauthorized")
    if failure == "blocked":
        return _telegram_error(403, "Forbidden: bot was blocked by the user")
    chat_id = chat if isinstance(chat, int) else str(chat)
    private = isinstance(chat_id, int) and chat_id > 0
    result: Dict[str, Any] = {
        "message_id": handler.server.next_telegram_id(),
        "from": {"id": int(bot_id), "is_bot": True, "first_name": "Sandbox Bot", "username": "SandboxBot"},
        "chat": {"id": chat_id, "type": "private" if private else "supergroup"},
        "date": int(time.time()), "text": text}
    reply = body.get("reply_parameters")
    if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
        result["reply_to_message"] = {"message_id": reply["message_id"], "chat": result["chat"], "date": result["date"]}
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 502, None, {}
    return 200, {"ok": True, "result": result}, {}


# --- LinkedIn REST -------------------------------------------------------------------------------


def _linkedin(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    if len(path) != 4 or path[0] != "rest" or path[1] != "socialActions" or path[3] != "comments":
        return None
    if not handler.bearer():
        return 401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                     "message": "Invalid access token"}, {}
    target = path[2]
    obj = body.get("object")
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    if not body.get("actor") or not obj or not message.get("text"):
        return 400, {"status": 400, "message": "actor, object and message.text are required"}, {}
    failure = handler.server.failure("linkedin", target)
    if failure == "429-once":
        return 429, {"status": 429, "message": "Resource level throttle APPLICATION DAY limit for calls to this "
                                               "resource is reached."}, {}
    if failure == "token":
        return 401, {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
                     "message": "The token used in the request has been revoked by the user"}, {}
    if failure == "blocked":
        return 403, {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                     "message": "Not enough permissions to access: partnerApiSocialActions.CREATE.20240101"}, {}
    comment_id = "71" + _digits(17)
    urn = f"urn:li:comment:({obj},{comment_id})"
    now = _now_ms()
    answer = {"actor": body["actor"], "object": obj, "message": message, "id": comment_id, "commentUrn": urn,
              "created": {"actor": body["actor"], "time": now}, "lastModified": {"actor": body["actor"], "time": now}}
    if body.get("parentComment"):
        answer["parentComment"] = body["parentComment"]
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 502, None, {}
    return 201, answer, {"x-restli-id": urn}


ROUTES: Dict[str, Callable[..., Optional[Answer]]] = {
    "graph": _graph_facebook,
    "instagram": _graph_instagram,
    "x": _x,
    "telegram": _telegram,
    "linkedin": _linkedin,
}


def main(argv: Optional[List[str]] = None) -> None:
    """Run the sandbox alone: prints the settings to export before starting the API."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webhook", default="http://127.0.0.1:8000", help="our API (loopback)")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--delay", type=float, default=0.4)
    args = parser.parse_args(argv)
    server, env = start(args.webhook, args.port, args.delay)
    for name, value in env.items():
        print(f"export {name}={value}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
