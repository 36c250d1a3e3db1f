"""The security headers every HTTP answer carries (the REST API's, the webhooks' function URL's and
`make run`'s gateway's own answers), in one place so the two front doors cannot drift apart."""
from typing import Dict

#: On every HTTP answer (API, webhooks, web page) unless the route set its own value.
SECURITY_HEADERS: Dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
