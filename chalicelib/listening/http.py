"""One authenticated GET of a platform's JSON for the pollers (X search and counts, Instagram
hashtags): the runtime's HTTP session, bounded timeouts, every failure as the caller's error
class (with the answer's headers, lower-cased, for rate limits). Tokens are never logged."""
from __future__ import annotations

from typing import Any, Dict, Tuple, Type


def get_json(url: str, params: Dict[str, str], token: str, failure: Type[Exception],
             what: str) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(the JSON object, the headers) of a 200, else `failure("<status> from <what>")`."""
    import requests

    from chalicelib.runtime import runtime

    try:
        response = runtime.http().get(url, params=params, headers={"Authorization": f"Bearer {token}"},
                                      timeout=(5, 20))
    except requests.exceptions.RequestException as error:
        raise failure(f"no answer ({type(error).__name__})") from None
    headers = {k.lower(): v for k, v in response.headers.items()}
    if response.status_code != 200:
        problem = failure(f"{response.status_code} from {what}")
        problem.headers = headers  # type: ignore[attr-defined]
        raise problem
    try:
        body = response.json()
    except ValueError:
        raise failure("200 without JSON") from None
    return (body if isinstance(body, dict) else {}), headers
