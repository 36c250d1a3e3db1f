"""The agent API and the web page through the API function's own Lambda function URL (issue 21).

API Gateway's REST API costs $3.50 per million requests, and an agent's page makes most of the
requests a deployment pays for; a function URL costs nothing per request. Chalice can only put a
REST API in front of its routes, so the API function's URL hands the same function a payload
format 2.0 event, and this module translates it into the REST (v1) event Chalice's handler
expects and Chalice's answer back. Every route, middleware, rate limit and header is then the
REST API's own code, unchanged; the REST API keeps working for deployments that use it.

What a function URL does not do for us, done here:
- routing: `rawPath` (still percent-encoded) is matched against the app's route patterns
  (`/api/conversations/{conversation_id}`) as API Gateway does: a literal segment wins over a
  parameter, a trailing slash is ignored, parameters are percent-decoded. No route: 404;
  a route without the method: Chalice's own 405 with `Allow`;
- the query string arrives raw (`rawQueryString`): parsed into the single and multi-valued maps;
- headers arrive lower-cased, repeated ones joined with commas, cookies apart (`cookies`);
- the caller's address is `requestContext.http.sourceIp` (login throttling keys on it);
- no stage variables (nothing of ours reads any: the functions' environment holds the settings);
- answers take `headers` and `cookies`, not `multiValueHeaders`.
Limits a REST API would enforce at its edge (URL length) are enforced here: a clear 4xx.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, unquote

from chalicelib.http_headers import SECURITY_HEADERS

#: A REST API refuses a longer URL (8,192 characters for the whole request line) at its edge.
MAX_PATH = 2048
MAX_QUERY = 8192
#: More query parameters than any route reads, with room to spare: beyond it, a 400.
MAX_QUERY_FIELDS = 100

RestHandler = Callable[[Dict[str, Any], Any], Dict[str, Any]]


class Refused(Exception):
    """A request answered before it reaches a route (status and message as Chalice words them)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_function_url_event(event: Any) -> bool:
    """A function URL's (payload format 2.0) event, not an API Gateway REST one."""
    return isinstance(event, dict) and event.get("version") == "2.0" and isinstance(event.get("rawPath"), str)


def serve(event: Mapping[str, Any], context: Any, routes: Mapping[str, Any], rest_handler: RestHandler) -> Dict[str, Any]:
    """Answer one function URL request with the app's REST handler (`Chalice.__call__`)."""
    try:
        rest_event = rest_event_of(event, routes)
    except Refused as refused:
        return _refusal(refused)
    return function_url_answer(rest_handler(rest_event, context))


def rest_event_of(event: Mapping[str, Any], routes: Mapping[str, Any]) -> Dict[str, Any]:
    """The REST (v1) proxy event API Gateway would have sent for this function URL request."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = str(http.get("method") or "").upper()
    raw_path = str(event.get("rawPath") or "")
    if len(raw_path) > MAX_PATH:
        raise Refused(414, "URITooLong", f"the path is longer than {MAX_PATH} characters")
    matched = match_route(raw_path, tuple(routes))
    if matched is None:
        raise Refused(404, "NotFoundError", "no such route")
    resource, parameters = matched
    multi_query = _query(str(event.get("rawQueryString") or ""))
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    cookies = [str(c) for c in event.get("cookies") or []]
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    body = event.get("body")
    if event.get("isBase64Encoded") and body is not None:
        try:
            base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, "BadRequestError", "the body is not valid base64") from None
    request_context = {
        "resourcePath": resource, "httpMethod": method, "path": raw_path,
        "requestId": context.get("requestId"), "stage": context.get("stage"),
        "domainName": context.get("domainName"), "requestTimeEpoch": context.get("timeEpoch"),
        "identity": {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent")},
    }
    return {
        "resource": resource, "path": raw_path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": parameters or None, "stageVariables": None,
        "requestContext": request_context, "body": body, "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }


def match_route(raw_path: str, patterns: Iterable[str]) -> Optional[Tuple[str, Dict[str, str]]]:
    """The route pattern `raw_path` reaches and its decoded parameters, or None. Literal segments
    are compared as sent; among several matches the one literal furthest left wins
    (`/api/conversations/search` before `/api/conversations/{conversation_id}`)."""
    if not raw_path.startswith("/"):
        return None
    path = raw_path[:-1] if raw_path != "/" and raw_path.endswith("/") else raw_path
    segments = path.split("/")
    for pattern in _by_specificity(tuple(patterns)).get(len(segments), ()):
        parameters: Dict[str, str] = {}
        for sent, expected in zip(segments, pattern.split("/")):
            if expected.startswith("{") and expected.endswith("}"):
                if not sent:
                    break
                parameters[expected[1:-1]] = _decoded(sent)
            elif sent != expected:
                break
        else:
            return pattern, parameters
    return None


@functools.lru_cache(maxsize=4)
def _by_specificity(patterns: Tuple[str, ...]) -> Dict[int, List[str]]:
    table: Dict[int, List[str]] = {}
    for pattern in patterns:
        table.setdefault(pattern.count("/") + 1, []).append(pattern)
    for candidates in table.values():
        candidates.sort(key=lambda p: [s.startswith("{") for s in p.split("/")])
    return table


def _decoded(segment: str) -> str:
    try:
        value = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise Refused(400, "BadRequestError", "a path segment is not valid percent-encoded UTF-8") from None
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise Refused(400, "BadRequestError", "a path segment holds control characters")
    return value


def _query(raw: str) -> Dict[str, List[str]]:
    if len(raw) > MAX_QUERY:
        raise Refused(414, "URITooLong", f"the query string is longer than {MAX_QUERY} characters")
    try:
        return parse_qs(raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS)
    except UnicodeDecodeError:
        raise Refused(400, "BadRequestError", "the query string is not valid percent-encoded UTF-8") from None
    except ValueError:
        raise Refused(400, "BadRequestError", f"more than {MAX_QUERY_FIELDS} query parameters") from None


def function_url_answer(answer: Mapping[str, Any]) -> Dict[str, Any]:
    """Chalice's REST answer in a function URL's shape: multi-valued headers joined (as HTTP
    allows), Set-Cookie values as `cookies`, the body as Chalice encoded it."""
    headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
    cookies: List[str] = []
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if str(name).lower() == "set-cookie":
            cookies.extend(str(v) for v in values)
        else:
            headers[str(name)] = ", ".join(str(v) for v in values)
    for name in [n for n in headers if n.lower() == "set-cookie"]:
        cookies.append(headers.pop(name))
    shaped: Dict[str, Any] = {"statusCode": answer.get("statusCode", 200), "headers": headers,
                              "body": answer.get("body") or "", "isBase64Encoded": bool(answer.get("isBase64Encoded"))}
    if cookies:
        shaped["cookies"] = cookies
    return shaped


def _refusal(refused: Refused) -> Dict[str, Any]:
    headers = dict(SECURITY_HEADERS, **{"Content-Type": "application/json", "Cache-Control": "no-store"})
    body = json.dumps({"Code": refused.code, "Message": refused.message})
    return {"statusCode": refused.status, "headers": headers, "body": body, "isBase64Encoded": False}
