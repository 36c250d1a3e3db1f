"""Routes of the web inbox (a Chalice blueprint): GET / (agents), GET /admin (admins and team
leads) and GET /static/<asset>.

The page is plain HTML + vanilla JS that talks to the JSON agent API with relative URLs, so it
works under an API Gateway stage prefix too. Assets are read once from files beside this module
(chalicelib/ is packaged whole by `chalice package`). The page links each asset with a content
hash (`?v=`), so a versioned asset may be cached for a year and the page itself is always
revalidated. Every response carries a strict Content-Security-Policy: scripts and styles only
from this origin, nothing inline, and Trusted Types so no string can reach an HTML sink.
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, Optional, Tuple

from chalice import Blueprint, Response

web = Blueprint(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = ("app.js", "picker.js", "listening.js", "templates.js", "attach.js", "app.css", "icon.svg")  # the only files /static/ serves
# The admin screens' own files live in web/admin/ (outside the agents' page and its size budget).
ADMIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "admin")
ADMIN_ASSETS = ("admin.js", "listening-admin.js", "admin.css")
# The Reports screen (team leads and admins) lives in web/reports/, outside the agents' page and
# its size budget like the admin screens; it reuses admin.css.
REPORTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reports")
REPORTS_ASSETS = ("reports.js", "reports.drill.js", "attention.js", "topics.js")
# The Staffing screen (team leads and admins), likewise in web/staffing/ with admin.css.
STAFFING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "staffing")
STAFFING_ASSETS = ("staffing.js",)
SCREEN_DIRS = {"admin.": ADMIN_DIR, "reports.": REPORTS_DIR, "staffing.": STAFFING_DIR}
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",  # attachments: fetched from our own /api/media with the token, shown from blob:
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGE_CACHE = "no-cache"  # always revalidate: a deploy must reach agents at once
VERSIONED_CACHE = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE = "no-cache"

_loaded: Dict[str, Tuple[str, str]] = {}  # name -> (text, etag)
COMPACTED = ("app.js", "picker.js", "listening.js", "templates.js", "attach.js", "index.html")  # the agents' page: sent without indentation and comments


def _read(name: str) -> Tuple[str, str]:
    if name not in _loaded:
        folder = _folder(name)
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            text = handle.read()
        if name.endswith(".html"):
            for asset in ASSETS + ADMIN_ASSETS + REPORTS_ASSETS + STAFFING_ASSETS:
                text = text.replace(f'"static/{asset}"', f'"static/{asset}?v={_version(asset)}"')
        text = compact(name, text)
        _loaded[name] = (text, '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:20] + '"')
    return _loaded[name]


def _folder(name: str) -> str:
    """Where a screen's file lives: its asset list says, else its page's name prefix."""
    for assets, folder in ((ADMIN_ASSETS, ADMIN_DIR), (REPORTS_ASSETS, REPORTS_DIR), (STAFFING_ASSETS, STAFFING_DIR)):
        if name in assets:
            return folder
    return next((d for prefix, d in SCREEN_DIRS.items() if name.startswith(prefix)), STATIC_DIR)


def compact(name: str, text: str) -> str:
    """What is sent of a commented, indented source: no indentation, blank lines or whole-line
    comments (and the header comment of a script). Line breaks stay where they were, so the
    script parses exactly as written (no string or template literal of ours spans lines)."""
    if name not in COMPACTED:
        return text
    lines = [line.strip() for line in text.split("\n")]
    kept = [line for line in lines if line and not (name.endswith(".js") and line.startswith("//"))]
    if name.endswith(".js") and kept and kept[0].startswith("/*"):
        end = next((i for i, line in enumerate(kept) if line.endswith("*/")), -1)
        kept = kept[end + 1:]
    return "\n".join(kept) + "\n"


def _version(asset: str) -> str:
    return _read(asset)[1].strip('"')[:12]


def _serve(name: str, cache_control: str) -> Response:
    text, etag = _read(name)
    headers = dict(SECURITY_HEADERS, **{"Cache-Control": cache_control, "ETag": etag,
                                        "Content-Security-Policy": content_security_policy()})
    request = web.current_request
    if _etag_matches((request.headers or {}).get("if-none-match"), etag):
        return Response(body="", headers=headers, status_code=304)
    headers["Content-Type"] = CONTENT_TYPES[os.path.splitext(name)[1]]
    return Response(body="" if request.method == "HEAD" else text, headers=headers, status_code=200)


def content_security_policy() -> str:
    """The pages' policy, whose connect-src also names the live updates' socket (chalicelib.push),
    an origin of its own (API Gateway's WebSocket API; `make run`'s PUSH_PORT)."""
    from chalicelib import config

    url = config.push_url()
    if not url:
        return CONTENT_SECURITY_POLICY
    origin = "/".join(url.split("/", 3)[:3])
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


def _etag_matches(header: Optional[str], etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or etag in candidates or "W/" + etag in candidates


def _not_found() -> Response:
    return Response(body="Not found\n", status_code=404,
                    headers=dict(SECURITY_HEADERS, **{"Content-Type": "text/plain; charset=utf-8",
                                                      "Cache-Control": "no-store"}))


@web.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    return _serve("index.html", PAGE_CACHE)


@web.route("/admin", methods=["GET", "HEAD"])
def admin() -> Response:
    """The team lead and admin screens; the page itself asks /api/me and shows only what the
    role may use (the API enforces it)."""
    return _serve("admin.html", PAGE_CACHE)


@web.route("/reports", methods=["GET", "HEAD"])
def reports() -> Response:
    """The Reports screen: what the caller's role may read is decided by the API."""
    return _serve("reports.html", PAGE_CACHE)


@web.route("/staffing", methods=["GET", "HEAD"])
def staffing() -> Response:
    """The Staffing screen: what the caller's role may read is decided by the API."""
    return _serve("staffing.html", PAGE_CACHE)


@web.route("/static/{name}", methods=["GET", "HEAD"])
def static_asset(name: str) -> Response:
    if name not in ASSETS + ADMIN_ASSETS + REPORTS_ASSETS + STAFFING_ASSETS:
        return _not_found()
    version = (web.current_request.query_params or {}).get("v")
    return _serve(name, VERSIONED_CACHE if version == _version(name) else UNVERSIONED_CACHE)
