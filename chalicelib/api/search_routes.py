"""GET /api/search?q=...&limit=: conversations whose contact name, handle or message text match
every word of `q` (names also by prefix), newest first, as list rows. Never a Scan: at most three
index Queries, one Query per team the caller sees (the waiting conversations, whose words are
indexed when their turn ends) and one BatchGetItem whatever the table size
(chalicelib.inbox.search). Rows of conversations the caller may not see are left out. 400 for an
empty, too long or unreadable q."""
from __future__ import annotations

from typing import Any

from chalice import BadRequestError, Blueprint

from chalicelib.api import common
from chalicelib.api.routes import authenticated

search_api = Blueprint(__name__)

MAX_RESULTS = 50


@search_api.route("/api/search", methods=["GET"])
@authenticated
def search_conversations(identity: Any) -> Any:
    from chalicelib.api import views
    from chalicelib.inbox import search

    params = search_api.current_request.query_params or {}
    raw_limit = params.get("limit")
    if raw_limit is not None and (not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_RESULTS):
        raise BadRequestError(f"limit must be an integer from 1 to {MAX_RESULTS}")
    try:
        terms = search.query_terms(params.get("q"))
        rows = search.search(params.get("q"), int(raw_limit or 20), teams=_teams(identity))
    except search.BadSearch as error:
        raise BadRequestError(str(error))
    items = [views.conversation_json(row) for row in rows]
    return {"items": [i for i in items if common.can_see(identity, i)], "terms": terms}


def _teams(identity: Any) -> Any:
    """The teams whose waiting conversations a search of `identity` reads: its own, or every
    team with a queue for those who see everything."""
    from chalicelib.api import access

    if access.sees_everything(identity):
        from chalicelib.inbox.rules import DEFAULT_TEAM
        from chalicelib.routing.directory import all_teams

        return {DEFAULT_TEAM, *all_teams()}
    return access.teams_of(identity.agent_id)
