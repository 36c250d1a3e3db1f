"""The post behind a comment or mention thread (chalicelib.inbox.post_previews):

GET /api/conversations/{id}/post: {"text", "url", "picture_url"}: the post's first lines, its
  address on the platform and, when it has a picture, our own URL for it (null otherwise);
GET /api/conversations/{id}/post/picture: that picture, fetched server-side from the platform's
  CDN (chalicelib.api.media_routes: platform media hosts only, public addresses only, size cap),
  so the page shows it from its own origin (its CSP allows img-src 'self' only).
404 for a conversation the agent may not see or one that is not under a post."""
from __future__ import annotations

from typing import Any

from chalice import Blueprint, NotFoundError

from chalicelib.api.routes import authenticated

post_api = Blueprint(__name__)


@post_api.route("/api/conversations/{conversation_id}/post", methods=["GET"])
@authenticated
def conversation_post(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import access
    from chalicelib.inbox import post_previews

    state = access.require_conversation(identity, conversation_id)
    found = post_previews.preview(state, f"/api/conversations/{conversation_id}/post/picture")
    if found is None:
        raise NotFoundError("this conversation is not under a post")
    return found


@post_api.route("/api/conversations/{conversation_id}/post/picture", methods=["GET"])
@authenticated
def conversation_post_picture(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import access, media_routes
    from chalicelib.inbox import post_previews

    state = access.require_conversation(identity, conversation_id)
    item = post_previews.cached(state)
    if item is None or not item.picture:
        raise NotFoundError("this post has no picture")
    return media_routes.serve_fetched(lambda: media_routes.fetch_public(item.picture),
                                      {"file_name": "post-picture"}, 0, conversation_id)
