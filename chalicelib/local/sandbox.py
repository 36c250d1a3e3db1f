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
- X: the X Activity echo of our own DM (`dm.sent`, when the access token names the user, as X's
  "<user id>-..." tokens do) and of our reply post (`post.create`). It also serves what an X
  Activity setup needs (`POST/GET /2/webhooks` with X's CRC check of a loopback webhook URL,
  `POST/GET /2/activity/subscriptions`) and the post lookup our send makes before a reply
  (`GET /2/tweets/<id>`: a post that mentions the token's user, unless the id contains
  "not-summoned"); asked with the media expansion (the post behind a thread), the post has a photo.
- The post behind a comment thread, offline: Facebook Page posts and Instagram media on the Graph
  bases, X posts (above), LinkedIn `GET /rest/posts/<URN>` and `/rest/images/<URN>`; their
  pictures are a PNG under the Graph base.
- Telegram and LinkedIn send nothing back for a bot's / organization's own message: neither here.
  Telegram's `sendPhoto` / `sendDocument` take the file's URL (what our outbox passes: a
  pre-signed URL of our stored copy) and answer the message with its photo sizes / document.
- X media: `POST /2/media/upload` (multipart media, media_category) answers a media id; a DM's
  `attachments` or a post's `media.media_ids` may then stand without text. Instagram DMs take an
  attachment by URL like text.
- WhatsApp media: `POST /<version>/<phone number id>/media` (multipart) keeps the file in memory
  and answers its id; `GET /<version>/<media id>` and the URL it names serve it back (our media
  endpoint shows a sent attachment in the thread like a received one); image and document
  messages are sent like text. Messenger's `POST /<version>/me/message_attachments` answers an
  `attachment_id`, and a message carrying one is sent and echoed like text.
- Platform analytics (chalicelib.local.analytics_sandbox): Page and Instagram insights (with
  Graph's "invalid metric" answer for removed metrics), WhatsApp analytics and pricing_analytics,
  LinkedIn share and follower statistics, X public metrics of the account's own posts.
- WhatsApp templates: `GET /<version>/<waba id>/message_templates` lists a few realistic ones
  (positional and named placeholders, a document header, a paused one), paged like Graph, with
  WHATSAPP_TOKEN only.
- Customers' profiles (looked up after a message is stored): Messenger's User Profile
  (`GET /<v>/<PSID>?fields=first_name,...`), Instagram's (`...?fields=name,username,profile_pic,
  follower_count`) with a picture under `/graph/<v>/profile-pictures/`, and LinkedIn's People API
  (`GET /rest/people/(id:<person>)`, 403 for an id containing "private"). X, WhatsApp and
  Telegram deliveries carry names themselves.
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

Only our adapters may call it: it listens on 127.0.0.1 only, answers a send only with the
configured token (the `secrets` lookup, as the platform would: META_PAGE_TOKEN, WHATSAPP_TOKEN,
INSTAGRAM_ACCESS_TOKEN, X_CONSUMER_KEY with X_ACCESS_TOKEN or X_OAUTH2_USER_TOKEN,
TELEGRAM_BOT_TOKEN, LINKEDIN_ACCESS_TOKEN; X's OAuth signature itself is not checked), and
refuses anything a browser sends (an Origin or Sec-Fetch-* header, or a Host that is not
loopback), so no web page can make it deliver a signed echo into the local inbox.

Bounded: request bodies up to 1 MB, at most MAX_TIMERS pending callbacks (extra ones are dropped
and counted), daemon threads only, callbacks only to a loopback webhook URL, `close()` cancels
every pending callback. Tokens are never printed (the request log is silenced).
"""
from __future__ import annotations

import argparse
import base64
import collections
import hmac
import itertools
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

GRAPH_VERSION = "v21.0"
MAX_BODY_BYTES = 1_000_000
MAX_MEDIA_BYTES = 6_000_000  # a WhatsApp media upload (multipart)
MAX_MEDIA = 20  # uploads kept in memory for the media URL lookups
MAX_TIMERS = 500
MAX_REMEMBERED = 1000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Headers only browsers send (fetch metadata and CORS): a request carrying one is refused.
BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest")
FAILURES = ("fail-429-once", "fail-blocked", "fail-token", "fail-window", "fail-timeout", "fail-5xx")
WABA_ID = "300000000000001"

Answer = Tuple[int, Any, Dict[str, str]]  # status, JSON body (None: empty), extra headers


def start(webhook_base_url: Optional[str], port: int = 0, delay: float = 0.4, slow_seconds: float = 25.0,
          secrets: Optional[Callable[[str], Optional[str]]] = None) -> Tuple["Sandbox", Dict[str, str]]:
    """Serve the sandbox on 127.0.0.1:`port` (0: any free port) in a daemon thread. Callbacks go
    to `webhook_base_url` (loopback only; None: no callbacks), the first `delay` seconds after the
    answer, signed with `secrets` (default the runtime's secret lookup, what our webhook checks),
    which also gives the tokens a send must carry.
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
        #: X Activity setup made against the sandbox: webhooks and subscriptions (bounded).
        self.x_webhooks: List[Dict[str, Any]] = []
        self.x_subscriptions: List[Dict[str, Any]] = []
        #: WhatsApp media uploads: media id -> (mime type, bytes), the last MAX_MEDIA
        self.media: "collections.OrderedDict[str, Tuple[str, bytes]]" = collections.OrderedDict()

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

    def secret(self, name: str) -> Optional[str]:
        lookup = self._secrets
        if lookup is None:
            from chalicelib.runtime import runtime

            lookup = runtime.secret
        return lookup(name)

    def token_ok(self, presented: Optional[str], *names: str) -> bool:
        """Whether `presented` is the configured value of one of `names` (none configured: no)."""
        if not presented:
            return False
        for name in names:
            expected = self.secret(name)
            if expected and hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8")):
                return True
        return False

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
        headers = {"Content-Type": "application/json", **get_adapter(adapter).signed_headers(raw, self.secret)}
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

    def _listening(self, parts: Any) -> bool:
        """X search and counts, Instagram hashtag search and recent media, with seeded posts
        (True when this path is one of them)."""
        from chalicelib.local.listening_seed import X_LISTENING, instagram_hashtags

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        serve = X_LISTENING.get(parts.path)
        if serve is not None:
            answer = serve(query) if _x_app_authorized(self) else _x_problem(401, "Unauthorized", "Unauthorized")
        else:
            answer = instagram_hashtags([unquote(s) for s in parts.path.split("/") if s][2:], query)
            if answer is None:
                return False
            if not self.server.token_ok(self.bearer() or query.get("access_token"), "META_PAGE_TOKEN"):
                answer = _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        self._answer(answer)
        return True

    def do_GET(self) -> None:  # noqa: N802
        refusal = self._browser_refusal()
        if refusal is not None:
            self._answer(refusal)
            return
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if parts.path.startswith(("/x/2/tweets/", f"/graph/{GRAPH_VERSION}/")) and self._listening(parts):  # listening_seed
            return
        from chalicelib.local import analytics_sandbox

        if analytics_sandbox.serve(self, parts):  # platform analytics (insights, statistics, metrics)
            return
        if segments[:1] == ["x"]:
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self.server.requests.append({"platform": "x", "path": parts.path, "query": query, "body": {},
                                         "method": "GET", "auth": _auth_kind(self.headers.get("Authorization"))})
            try:
                answer = _x_get(self, segments[1:], query)
            except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500 with its reason
                answer = (500, {"error": f"sandbox error: {type(exc).__name__}: {exc}"}, {})
            self._answer(answer or (404, {"error": f"no such endpoint: {parts.path}"}, {}))
            return
        if segments[:3] in (["linkedin", "rest", "posts"], ["linkedin", "rest", "images"]) and len(segments) == 4:
            self.server.requests.append({"platform": "linkedin", "path": parts.path, "query": {}, "body": {},
                                         "method": "GET", "auth": _auth_kind(self.headers.get("Authorization"))})
            self._answer(linkedin_post_lookup(self, segments[1:]))
            return
        if segments[:1] == ["graph"] and (len(segments) == 3 or segments[2:3] == ["media"] and len(segments) == 4) \
                and segments[-1] in self.server.media:
            self._answer_media(segments)
            return
        if segments[:1] == ["graph"] and segments[2:3] in (["post-pictures"], ["profile-pictures"]) and len(segments) == 4:
            self._answer_bytes("image/png", POST_PICTURE)  # a CDN picture: public, no token
            return
        if segments[:1] in (["graph"], ["instagram"]) and len(segments) == 3 and "fields" in parts.query:
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self.server.requests.append({"platform": segments[0], "path": parts.path, "query": query, "body": {},
                                         "method": "GET", "auth": _auth_kind(self.headers.get("Authorization"))})
            if set(query["fields"].split(",")) & {"first_name", "follower_count"}:  # a customer's profile
                self._answer(profile_lookup(self, segments[0] == "instagram", segments[2], query["fields"]))
            else:
                self._answer(post_lookup(self, segments[0] == "instagram", segments[2]))
            return
        if segments[:3] == ["linkedin", "rest", "people"] and len(segments) == 4:
            self.server.requests.append({"platform": "linkedin", "path": parts.path, "query": {}, "body": {},
                                         "method": "GET", "auth": _auth_kind(self.headers.get("Authorization"))})
            self._answer(_linkedin_member(self, segments[3]))
            return
        if segments[:1] == ["graph"] and segments[3:] == ["message_templates"] and len(segments) == 4:
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self.server.requests.append({"platform": "graph", "path": parts.path, "query": query, "body": {},
                                         "method": "GET", "auth": _auth_kind(self.headers.get("Authorization"))})
            self._answer(_whatsapp_templates(self, segments[2], query))
            return
        self._answer((404, {"error": "the sandbox serves send endpoints, X look-ups, X recent search, "
                                     "WhatsApp templates and customers' profiles only"}, {}))

    def _answer_media(self, segments: List[str]) -> None:
        """GET /graph/<v>/<media id> (WhatsApp's media URL lookup, WHATSAPP_TOKEN) and the URL it
        names, /graph/<v>/media/<media id> (the bytes, with the same token; under the Graph base, the
        only loopback URLs our media endpoint fetches): uploads we were given."""
        if not self.server.token_ok(self.bearer(), "WHATSAPP_TOKEN"):
            self._answer(_graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token"))
            return
        mime, data = self.server.media[segments[-1]]
        if len(segments) == 3:
            self._answer((200, {"url": f"{self.server.base_url}/graph/{GRAPH_VERSION}/media/{segments[-1]}", "mime_type": mime,
                                "file_size": len(data), "id": segments[-1], "messaging_product": "whatsapp"}, {}))
            return
        self._answer_bytes(mime, data)

    def _answer_bytes(self, mime: str, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _browser_refusal(self) -> Optional[Answer]:
        """A browser's request (any page's fetch or form, or a page on a rebound DNS name): our
        adapters send no Origin or Sec-Fetch-* header and call 127.0.0.1 by address."""
        if any(self.headers.get(name) is not None for name in BROWSER_HEADERS):
            return 403, {"error": "cross-origin requests are refused: the sandbox serves the local server only"}, {}
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
        if name not in LOOPBACK_HOSTS:
            return 403, {"error": "the sandbox answers requests to a loopback address only"}, {}
        return None

    def do_POST(self) -> None:  # noqa: N802
        refusal = self._browser_refusal()
        if refusal is not None:
            self.close_connection = True  # the body is not read
            self._answer(refusal)
            return
        length = int(self.headers.get("Content-Length") or 0)
        media_upload = urlsplit(self.path).path.endswith(("/media", "/message_attachments", "/media/upload"))
        if length < 0 or length > (MAX_MEDIA_BYTES if media_upload else MAX_BODY_BYTES):
            self._answer((413, {"error": "body too large"}, {}))
            return
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        if media_upload and parts.path.startswith("/graph/"):
            self.server.requests.append({"platform": "graph", "path": parts.path, "query": {}, "body": {},
                                         "auth": _auth_kind(self.headers.get("Authorization"))})
            self._answer(_media_upload(self, raw, messenger=parts.path.endswith("/message_attachments")))
            return
        if media_upload and parts.path == "/x/2/media/upload":
            self.server.requests.append({"platform": "x", "path": parts.path, "query": {}, "body": {},
                                         "auth": _auth_kind(self.headers.get("Authorization"))})
            self._answer(_x_media_upload(self, raw))
            return
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
    token = handler.bearer() or query.get("access_token") or body.get("access_token")
    if not token:
        return _graph_error(400, 190, "An active access token must be used to query information about the current user.")
    names = (("INSTAGRAM_ACCESS_TOKEN",) if instagram else
             ("WHATSAPP_TOKEN",) if body.get("messaging_product") == "whatsapp" else ("META_PAGE_TOKEN",))
    if not handler.server.token_ok(str(token), *names):
        return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
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
    if not target or not (isinstance(message.get("text"), str) or isinstance(message.get("attachment"), dict)):
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
    if not to or kind not in ("text", "template", "image", "document") or not isinstance(body.get(kind), dict):
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


#: A WhatsApp Business Account's templates as Graph lists them (approved ones, and one paused).
TEMPLATES = [
    {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1100000000000001",
     "parameter_format": "POSITIONAL", "components": [
         {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
         {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way and should arrive by {{3}}.",
          "example": {"body_text": [["Ana", "A-1001", "Friday"]]}},
         {"type": "FOOTER", "text": "Acme Coffee"}]},
    {"name": "follow_up", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1100000000000002",
     "parameter_format": "NAMED", "components": [
         {"type": "BODY", "text": "Hello {{first_name}}, we are following up on your message. Reply to continue "
                                  "the conversation.",
          "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}}]},
    {"name": "follow_up", "language": "pt_PT", "status": "APPROVED", "category": "UTILITY", "id": "1100000000000003",
     "parameter_format": "NAMED", "components": [
         {"type": "BODY", "text": "Ol\u00e1 {{first_name}}, estamos a dar seguimento \u00e0 sua mensagem. "
                                  "Responda para continuar a conversa."}]},
    {"name": "receipt_pdf", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1100000000000004",
     "components": [{"type": "HEADER", "format": "DOCUMENT"},
                    {"type": "BODY", "text": "Your receipt for order {{1}} is attached."}]},
    {"name": "spring_sale", "language": "en_US", "status": "PAUSED", "category": "MARKETING", "id": "1100000000000005",
     "components": [{"type": "BODY", "text": "Spring sale: 20% off every bag this week."}]},
]


def _whatsapp_templates(handler: _Handler, waba: str, query: Dict[str, str]) -> Answer:
    """GET /{waba-id}/message_templates[?status=APPROVED][&limit=][&after=]: paged like Graph."""
    if not handler.server.token_ok(handler.bearer(), "WHATSAPP_TOKEN"):
        return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    if waba != WABA_ID:
        return _graph_error(400, 100, f"Unsupported get request. Object with ID '{waba}' does not exist")
    status = (query.get("status") or "").upper()
    found = [t for t in TEMPLATES if not status or t["status"] == status]
    try:
        limit = max(1, min(int(query.get("limit") or 25), 100))
        start = int(base64.b64decode(query["after"]).decode()) if query.get("after") else 0
    except (ValueError, TypeError):
        return _graph_error(400, 100, "(#100) Invalid parameter")
    page = found[start:start + limit]
    answer: Dict[str, Any] = {"data": page, "paging": {"cursors": {
        "before": base64.b64encode(str(start).encode()).decode(),
        "after": base64.b64encode(str(start + len(page)).encode()).decode()}}}
    if start + limit < len(found):
        answer["paging"]["next"] = "https://graph.facebook.com/v21.0/" + waba + "/message_templates?after=..."
    return 200, answer, {}


def _multipart(handler: _Handler, raw: bytes) -> Optional[Dict[str, Any]]:
    """The parts of a multipart/form-data body by field name; None when it is not one."""
    from email.parser import BytesParser
    from email.policy import HTTP

    content_type = handler.headers.get("Content-Type") or ""
    if not content_type.startswith("multipart/form-data"):
        return None
    parsed = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: Dict[str, Any] = {}
    for part in parsed.iter_parts() if parsed.is_multipart() else []:
        fields[part.get_param("name", header="content-disposition")] = part
    return fields


def _media_upload(handler: _Handler, raw: bytes, messenger: bool) -> Answer:
    """WhatsApp's POST /<v>/<phone number id>/media, multipart (file, type, messaging_product=
    whatsapp), WHATSAPP_TOKEN, answered {"id"}; Messenger's POST /<v>/me/message_attachments
    (message, filedata), META_PAGE_TOKEN, answered {"attachment_id"}. WhatsApp files are kept in
    memory (the last MAX_MEDIA) for the media URL lookups."""
    if not handler.server.token_ok(handler.bearer(), "META_PAGE_TOKEN" if messenger else "WHATSAPP_TOKEN"):
        return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    fields = _multipart(handler, raw)
    if fields is None:
        return _graph_error(400, 100, "(#100) The parameter file is required")
    if messenger:
        if fields.get("filedata") is None or fields.get("message") is None:
            return _graph_error(400, 100, "(#100) The parameter message and filedata are required")
        return 200, {"attachment_id": _digits(16)}, {}
    upload, product = fields.get("file"), fields.get("messaging_product")
    if upload is None or product is None or product.get_content().strip() != "whatsapp":
        return _graph_error(400, 100, "(#100) The parameter messaging_product and file are required")
    data = upload.get_payload(decode=True) or b""
    media_id = _digits(16)
    with handler.server._lock:
        handler.server.media[media_id] = (upload.get_content_type(), data)
        while len(handler.server.media) > MAX_MEDIA:
            handler.server.media.popitem(last=False)
    return 200, {"id": media_id}, {}


# --- the post behind a comment thread (chalicelib.channels.posts) -------------------------------

# a 1x1 PNG: what a post's picture looks like offline
POST_PICTURE = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154"
                             "789c6360f8cfc0f01f0005000201a5f3c3a60000000049454e44ae426082")


def post_lookup(handler: _Handler, instagram: bool, post_id: str) -> Answer:
    """GET /graph/<v>/<page post id>?fields=message,permalink_url,full_picture (META_PAGE_TOKEN) and
    /instagram/<v>/<media id>?fields=caption,permalink,media_url,... (INSTAGRAM_ACCESS_TOKEN, or the
    Page token on the Graph base): a post with text and a picture our media endpoint can fetch."""
    names = ("INSTAGRAM_ACCESS_TOKEN",) if instagram else ("META_PAGE_TOKEN",)
    if not handler.server.token_ok(handler.bearer(), *names):
        return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    if not re.fullmatch(r"[0-9]{1,32}(_[0-9]{1,32})?", post_id):
        return _graph_error(400, 100, f"(#100) Unsupported get request. Object with ID '{post_id[:40]}' does not exist")
    picture = f"{handler.server.base_url}/graph/{GRAPH_VERSION}/post-pictures/{post_id}.png"
    if "_" in post_id:
        return 200, {"id": post_id, "message": "Fresh from the oven today: sourdough, rye and our new gluten-free loaf.\n"
                     "Come by before noon!", "permalink_url": f"https://www.facebook.com/{post_id}",
                     "full_picture": picture}, {}
    return 200, {"id": post_id, "caption": "Our autumn menu is here \U0001F342 #coffee #lisbon", "media_type": "IMAGE",
                 "permalink": f"https://www.instagram.com/p/{post_id[-8:]}/", "media_url": picture}, {}


def x_post_lookup(base_url: str, post: Dict[str, Any]) -> Dict[str, Any]:
    """GET /2/tweets/<id> with the media and author expansions: the post with a photo whose URL our
    media endpoint can fetch offline (under the Graph base, a trusted sandbox base)."""
    key = f"3_{post['id']}"
    post = dict(post, text="Our winter blend is back \u2615 Which roast should we bring next?",
                attachments={"media_keys": [key]})
    return {"data": post, "includes": {
        "media": [{"media_key": key, "type": "photo",
                   "url": f"{base_url}/graph/{GRAPH_VERSION}/post-pictures/x{post['id']}.png"}],
        "users": [{"id": post["author_id"], "username": "acmecoffee", "name": "Acme Coffee"}]}}


def linkedin_post_lookup(handler: _Handler, path: List[str]) -> Answer:
    """GET /linkedin/rest/posts/<share or ugcPost URN> (commentary and an image URN) and
    /linkedin/rest/images/<image URN> (its `downloadUrl`), with LINKEDIN_ACCESS_TOKEN."""
    if not handler.server.token_ok(handler.bearer(), "LINKEDIN_ACCESS_TOKEN"):
        return 401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                     "message": "Invalid access token"}, {}
    urn = path[2]
    if path[1] == "images" and re.fullmatch(r"urn:li:image:[A-Za-z0-9_-]{1,200}", urn):
        return 200, {"id": urn, "status": "AVAILABLE", "downloadUrl":
                     f"{handler.server.base_url}/graph/{GRAPH_VERSION}/post-pictures/{urn.rsplit(':', 1)[-1]}.png"}, {}
    if path[1] == "posts" and re.fullmatch(r"urn:li:(share|ugcPost):[0-9]{1,32}", urn):
        return 200, {"id": urn, "author": "urn:li:organization:10000001", "lifecycleState": "PUBLISHED",
                     "commentary": "Our autumn roast is here \U0001f342 Tell us what you taste!",
                     "content": {"media": {"id": f"urn:li:image:C4D{urn.rsplit(':', 1)[-1]}", "altText": "Roast"}}}, {}
    return 404, {"status": 404, "message": f"Not Found: {urn[:60]}"}, {}
# --- customers' profiles (chalicelib.inbox.contacts.enrich, after a message is stored) ------------

PEOPLE = (("Ana", "Sousa"), ("Tomás", "Ribeiro"), ("Zoë", "Martin"), ("Kenji", "Sato"), ("Amara", "Okafor"),
          ("Lena", "Vogel"), ("Diego", "Alvarez"), ("Priya", "Nair"))


def _person(user_id: str) -> Tuple[str, str]:
    """The same made-up person for the same id, every time."""
    return PEOPLE[sum(user_id.encode()) % len(PEOPLE)]


def profile_lookup(handler: _Handler, instagram: bool, user_id: str, fields: str) -> Answer:
    """GET /graph/<v>/<PSID>?fields=first_name,last_name,profile_pic (Messenger User Profile,
    META_PAGE_TOKEN) and /instagram/<v>/<IGSID>?fields=name,username,profile_pic,follower_count
    (INSTAGRAM_ACCESS_TOKEN, or the Page token on the Graph base): a person with a picture our media
    endpoint can fetch; an id containing "fail-profile" answers Meta's "cannot be found" error."""
    names = ("INSTAGRAM_ACCESS_TOKEN",) if instagram else ("META_PAGE_TOKEN", "INSTAGRAM_ACCESS_TOKEN")
    if not handler.server.token_ok(handler.bearer(), *names):
        return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    if "fail-profile" in user_id or not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", user_id):
        return _graph_error(400, 100, f"(#100) Object with ID '{user_id[:40]}' does not exist, cannot be loaded")
    first, last = _person(user_id)
    picture = f"{handler.server.base_url}/graph/{GRAPH_VERSION}/profile-pictures/{user_id}.png"
    if "first_name" in fields:
        return 200, {"first_name": first, "last_name": last, "profile_pic": picture, "id": user_id}, {}
    return 200, {"name": f"{first} {last}", "username": f"{first.lower()}.{last.lower()}"[:30],
                 "profile_pic": picture, "follower_count": 100 + sum(user_id.encode()) % 5000, "id": user_id}, {}


def _linkedin_member(handler: _Handler, person: str) -> Answer:
    """GET /rest/people/(id:<person id>) (LINKEDIN_ACCESS_TOKEN): the member's localized name and
    vanity name, or 403 for an id containing "private" (the organization may not see that member)."""
    if not handler.server.token_ok(handler.bearer(), "LINKEDIN_ACCESS_TOKEN"):
        return 401, {"status": 401, "serviceErrorCode": 65600, "message": "Invalid access token"}, {}
    found = re.fullmatch(r"\(id:([A-Za-z0-9_-]{1,100})\)", person)
    if not found:
        return 400, {"status": 400, "message": "Syntax exception in path variables"}, {}
    if "private" in found.group(1):
        return 403, {"status": 403, "serviceErrorCode": 100, "message": "Not enough permissions to access: people"}, {}
    first, last = _person(found.group(1))
    return 200, {"id": found.group(1), "localizedFirstName": first, "localizedLastName": last,
                 "vanityName": f"{first}-{last}".lower()}, {}


def _graph_facebook(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    return _graph(handler, path, query, body, instagram=False)


def _graph_instagram(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    return _graph(handler, path, query, body, instagram=True)


# --- X API v2 ------------------------------------------------------------------------------------


def _oauth_parameters(handler: _Handler) -> Dict[str, str]:
    header = handler.headers.get("Authorization") or ""
    if not header.startswith("OAuth "):
        return {}
    found = {}
    for item in header[6:].split(","):
        name, _, value = item.strip().partition("=")
        found[name] = unquote(value.strip('"'))
    return found


def _x_user(handler: _Handler) -> Optional[str]:
    """Our user id: X access tokens read "<user id>-<secret part>" (OAuth 1.0a; a sandbox OAuth 2.0
    user token may read "<user id>-..." too)."""
    header = handler.headers.get("Authorization") or ""
    token = header[7:].strip() if header.startswith("Bearer ") else _oauth_parameters(handler).get("oauth_token", "")
    user = token.split("-", 1)[0]
    return user if user.isdigit() else None


def _x_authorized(handler: _Handler) -> bool:
    """The configured consumer key and access token (OAuth 1.0a), or the OAuth 2.0 user token."""
    oauth = _oauth_parameters(handler)
    if oauth:
        return (handler.server.token_ok(oauth.get("oauth_consumer_key"), "X_CONSUMER_KEY")
                and handler.server.token_ok(oauth.get("oauth_token"), "X_ACCESS_TOKEN"))
    return handler.server.token_ok(handler.bearer(), "X_OAUTH2_USER_TOKEN")


def _x_problem(status: int, title: str, detail: str, headers: Optional[Dict[str, str]] = None) -> Answer:
    return status, {"title": title, "detail": detail, "type": "about:blank", "status": status}, headers or {}


def _x_app_authorized(handler: _Handler) -> bool:
    """Webhook and subscription management: the app's bearer token, or the account's own."""
    return handler.server.token_ok(handler.bearer(), "X_BEARER_TOKEN") or _x_authorized(handler)


def _x(handler: _Handler, path: List[str], query: Dict[str, str], body: Dict[str, Any]) -> Optional[Answer]:
    managing = path in (["2", "webhooks"], ["2", "activity", "subscriptions"])
    if not (_x_app_authorized(handler) if managing else _x_authorized(handler)):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    if path == ["2", "webhooks"]:
        return _x_create_webhook(handler, body)
    if path == ["2", "activity", "subscriptions"]:
        return _x_subscribe(handler, body)
    is_dm = len(path) == 5 and path[:3] == ["2", "dm_conversations", "with"] and path[4] == "messages"
    is_post = path == ["2", "tweets"]
    if not (is_dm or is_post):
        return None
    text = body.get("text")
    media = body.get("attachments") if is_dm else (body.get("media") or {}).get("media_ids") \
        if isinstance(body.get("media"), dict) else None
    if not (isinstance(text, str) and text) and not (isinstance(media, list) and media):
        return _x_problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
    text = text if isinstance(text, str) else ""
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
            server.later(server.delay, "x", _x_activity(me, "dm.sent", {"direct_message_events": [{
                "type": "message_create", "id": new_id, "created_timestamp": str(now),
                "message_create": {"target": {"recipient_id": participant}, "sender_id": me,
                                   "message_data": {"text": text, "entities": {"hashtags": [], "symbols": [],
                                                                               "user_mentions": [], "urls": []}}}}],
                "users": {me: {"data": {"id": me, "name": "Acme Coffee", "username": "acmecoffee"}}}}))
    else:
        answer = {"data": {"id": new_id, "text": text, "edit_history_tweet_ids": [new_id]}}
        if me:
            server.later(server.delay, "x", _x_activity(me, "post.create", {
                "id": new_id, "text": text, "author_id": me, "created_at": _iso(now),
                "referenced_tweets": [{"type": "replied_to", "id": str(target)}], "edit_history_tweet_ids": [new_id]},
                {"users": [{"id": me, "name": "Acme Coffee", "username": "acmecoffee"}]}))
    if failure == "timeout":
        handler.slow()
    if failure == "5xx":
        return 503, None, {}
    return 201, answer, {}


def _x_media_upload(handler: _Handler, raw: bytes) -> Answer:
    """POST /2/media/upload (multipart `media`, `media_category`, `media_type`; the account's user
    context): answers the media id (valid 24 hours) a DM's `attachments` or a post's `media` names."""
    if not _x_authorized(handler):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    fields = _multipart(handler, raw) or {}
    category = fields.get("media_category")
    if fields.get("media") is None or category is None or category.get_content().strip() not in (
            "tweet_image", "dm_image", "tweet_gif", "dm_gif", "tweet_video", "dm_video"):
        return _x_problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
    media_id = "18" + _digits(17)
    return 200, {"data": {"id": media_id, "media_key": f"3_{media_id}", "size": len(fields["media"].get_payload(decode=True) or b""),
                          "expires_after_secs": 86400}}, {}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _x_activity(user_id: str, event_type: str, payload: Dict[str, Any],
                includes: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """An X Activity delivery as X sends it to a registered webhook."""
    data: Dict[str, Any] = {"event_uuid": str(random.randint(-2**63, 2**63 - 1)), "filter": {"user_id": user_id},
                            "event_type": event_type, "tag": "sandbox", "payload": payload}
    if includes:
        data["includes"] = includes
    return {"data": data}


def _x_get(handler: _Handler, path: List[str], query: Dict[str, str]) -> Optional[Answer]:
    if not _x_app_authorized(handler):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    server = handler.server
    if path == ["2", "webhooks"]:
        with server._lock:
            found = list(server.x_webhooks)
        return 200, {"data": found, "meta": {"result_count": len(found)}}, {}
    if path == ["2", "activity", "subscriptions"]:
        with server._lock:
            found = list(server.x_subscriptions)
        return 200, {"data": found, "meta": {"total_subscriptions": len(found)}}, {}
    if len(path) == 3 and path[:2] == ["2", "tweets"]:
        post_id = path[2]
        failure = server.failure("x-lookup", post_id)
        if failure == "429-once":
            return _x_problem(429, "Too Many Requests", "Too Many Requests",
                              {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 1)})
        if failure == "token":
            return _x_problem(401, "Unauthorized", "Unauthorized")
        me = _x_user(handler) or "0"
        post: Dict[str, Any] = {"id": post_id, "author_id": "1530000000000000009", "text": "@acmecoffee hello",
                                "entities": {"mentions": [{"start": 0, "end": 11, "username": "acmecoffee", "id": me}]}}
        if "not-summoned" in post_id:
            post.update(text="talking about coffee", entities={})
        if "attachments.media_keys" in query.get("expansions", ""):  # the post behind a thread
            return 200, x_post_lookup(server.base_url, post), {}
        return 200, {"data": post}, {}
    return None


def _x_create_webhook(handler: _Handler, body: Dict[str, Any]) -> Answer:
    """POST /2/webhooks: X checks the URL with a CRC GET before keeping it (here only loopback
    URLs are called, with the secrets the sandbox signs with)."""
    url = body.get("url")
    if not isinstance(url, str) or urlsplit(url).hostname not in LOOPBACK_HOSTS:
        return _x_problem(400, "Invalid Request", "The sandbox registers loopback webhook URLs only.")
    token = _b64(_digits(24))
    try:
        with urllib.request.urlopen(f"{url}{'&' if '?' in url else '?'}crc_token={token}",  # noqa: S310
                                    timeout=5) as response:
            answer = json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        answer = {}
    secrets = handler.server._secrets
    if secrets is None:
        from chalicelib.runtime import runtime

        secrets = runtime.secret
    from chalicelib.channels.x import crc_response_token

    secret = secrets("X_OAUTH2_CLIENT_SECRET") or secrets("X_CONSUMER_SECRET") or ""
    accepted = {crc_response_token(secret, token), crc_response_token(secrets("X_CONSUMER_SECRET") or "", token)}
    if not isinstance(answer, dict) or answer.get("response_token") not in accepted:
        return _x_problem(400, "CrcValidationFailed", f"The CRC check of {url} failed.")
    webhook = {"id": "19" + _digits(17), "url": url, "valid": True, "created_at": _iso(_now_ms())}
    with handler.server._lock:
        if len(handler.server.x_webhooks) >= 10:
            return _x_problem(403, "Forbidden", "Too many webhooks for this app.")
        handler.server.x_webhooks.append(webhook)
    return 200, {"data": webhook}, {}


def _x_subscribe(handler: _Handler, body: Dict[str, Any]) -> Answer:
    event_type, tag = body.get("event_type"), body.get("tag")
    user_id = (body.get("filter") or {}).get("user_id") if isinstance(body.get("filter"), dict) else None
    if not isinstance(event_type, str) or not isinstance(user_id, str) or not user_id.isdigit():
        return _x_problem(400, "Invalid Request", "event_type and filter.user_id are required.")
    server = handler.server
    with server._lock:
        if any(s["event_type"] == event_type and s["filter"]["user_id"] == user_id for s in server.x_subscriptions):
            return _x_problem(409, "DuplicateSubscription", "This subscription already exists.")
        if len(server.x_subscriptions) >= 50:  # the Basic tier's limit
            return _x_problem(429, "SubscriptionLimit", "The subscription limit of this app is reached.")
        subscription = {"subscription_id": "19" + _digits(17), "event_type": event_type,
                        "filter": {"user_id": user_id}, "created_at": _iso(_now_ms()), "updated_at": _iso(_now_ms())}
        if isinstance(tag, str):
            subscription["tag"] = tag
        if isinstance(body.get("webhook_id"), str):
            subscription["webhook_id"] = body["webhook_id"]
        server.x_subscriptions.append(subscription)
    return 200, {"data": subscription, "meta": {"total_subscriptions": len(server.x_subscriptions)}}, {}


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
    if not handler.server.token_ok(path[0][3:], "TELEGRAM_BOT_TOKEN"):
        return _telegram_error(401, "Unauthorized")
    files = {"sendPhoto": "photo", "sendDocument": "document"}
    if path[1] != "sendMessage" and path[1] not in files:
        return _telegram_error(404, "Not Found")
    chat = body.get("chat_id")
    field = files.get(path[1])
    text = body.get("caption") if field else body.get("text")
    if chat is None:
        return _telegram_error(400, "Bad Request: chat_id is empty")
    if field and not (isinstance(body.get(field), str) and body[field].startswith(("http://", "https://"))):
        return _telegram_error(400, f"Bad Request: there is no {field} in the request")
    if not field and (not isinstance(text, str) or not text):
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
        "date": int(time.time())}
    if field == "photo":  # a photo by URL comes back as its sizes, a document as its file
        result["photo"] = [{"file_id": f"AgAC{_digits(20)}", "file_unique_id": f"AQAD{_digits(8)}", "width": 1,
                            "height": 1}]
    elif field == "document":
        result["document"] = {"file_id": f"BQAC{_digits(20)}", "file_unique_id": f"AgAD{_digits(8)}",
                              "file_name": "document.pdf", "mime_type": "application/pdf"}
    if isinstance(text, str) and text:
        result["caption" if field else "text"] = text
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
    if not handler.server.token_ok(handler.bearer(), "LINKEDIN_ACCESS_TOKEN"):
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
