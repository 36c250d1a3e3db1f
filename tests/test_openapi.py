"""GET /api/openapi.json is true: every /api route the app registers is documented (and nothing
else), every 4xx answers the one Error shape, and real answers of several flows validate against
the documented schemas (jsonschema, draft 2020-12 = OpenAPI 3.1 schemas)."""
from __future__ import annotations

import json

import jsonschema
import pytest
from referencing import Registry, Resource

from tests.helpers import PAGE, messenger, page_delivery


def _document(inbox):
    response = inbox.client.http.get("/api/openapi.json")
    assert response.status_code == 200
    return json.loads(response.body)


def test_every_registered_api_route_is_documented_and_nothing_else(inbox):
    import app

    doc = _document(inbox)
    registered = {(path, method.lower()) for path, methods in app.app.routes.items() if path.startswith("/api/")
                  for method in methods}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert registered - documented == set(), "undocumented routes"
    assert documented - registered == set(), "documented routes the app does not have"


def test_one_error_shape_for_every_4xx_and_the_document_is_valid_openapi(inbox):
    doc = _document(inbox)
    assert doc["openapi"].startswith("3.")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, answer in op["responses"].items():
                if code.startswith("4"):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, \
                        (path, method, code)
            if method != "get" or "{" in path:
                assert any(c.startswith("4") for c in op["responses"]) or path == "/api/openapi.json", (path, method)
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - a dev dependency of a dependency
        pytest.skip("openapi-spec-validator not installed")
    validate(doc)


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.registry = Registry().with_resource("doc", Resource.from_contents(
            dict(doc, **{"$schema": "https://json-schema.org/draft/2020-12/schema"})))

    def check(self, path, method, response):
        op = self.doc["paths"][path][method]
        code = str(response.status_code)
        assert code in op["responses"], (path, method, code, response.body)
        content = op["responses"][code].get("content")
        if content is None:
            assert not response.body
            return
        schema = content["application/json"]["schema"]
        body = json.loads(response.body)
        ref = schema["$ref"].replace("#", "doc#", 1) if "$ref" in schema else None
        jsonschema.Draft202012Validator({"$ref": ref} if ref else _rebase(schema), registry=self.registry).validate(body)
        return body


def _rebase(schema):
    text = json.dumps(schema).replace('"#/components', '"doc#/components')
    return json.loads(text)


def test_real_answers_match_their_schemas(inbox):
    checker = Checker(_document(inbox))
    inbox.add_account("messenger", PAGE)
    inbox.post_meta(page_delivery(messenger("mo1", "psid_o1", 1700000000000, "where is my parcel")))
    inbox.process()
    token = inbox.login_admin()
    auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    http = inbox.client.http

    def call(method, template, path=None, body=None):
        kwargs = {"headers": auth}
        if body is not None:
            kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
        response = getattr(http, method)(path or template, **kwargs)
        return checker.check(template, method, response)

    page = call("get", "/api/conversations")
    conversation_id = page["items"][0]["id"]
    one = "/api/conversations/{conversation_id}"
    call("get", one, f"/api/conversations/{conversation_id}")
    call("get", one, "/api/conversations/c_missing")  # 404, the Error shape
    call("patch", one, f"/api/conversations/{conversation_id}", {"priority": "high"})
    call("patch", one, f"/api/conversations/{conversation_id}", {"priority": "nope"})  # 422
    call("patch", one, f"/api/conversations/{conversation_id}", "{")  # 400
    call("get", one + "/messages", f"/api/conversations/{conversation_id}/messages")
    call("get", one + "/events", f"/api/conversations/{conversation_id}/events")
    call("post", one + "/read", f"/api/conversations/{conversation_id}/read")
    call("post", "/api/conversations/bulk", body={"ids": [conversation_id, "c_x"], "status": "pending"})
    call("post", "/api/conversations/bulk", body={"ids": []})
    call("get", "/api/search", "/api/search?q=parcel")
    call("get", "/api/search", "/api/search?q=")
    created = call("post", "/api/canned-replies", body={"shortcut": "s", "title": "t", "text": "Hi {{contact.name}}"})
    call("post", "/api/canned-replies", body={"shortcut": "s", "title": "t", "text": "again"})  # 409
    call("get", "/api/canned-replies")
    rid = created["id"]
    call("get", "/api/canned-replies/{reply_id}/render",
         f"/api/canned-replies/{rid}/render?conversation_id={conversation_id}")
    call("put", "/api/canned-replies/{reply_id}", f"/api/canned-replies/{rid}", {"shortcut": "s2", "title": "t",
                                                                                 "text": "x"})
    call("delete", "/api/canned-replies/{reply_id}", f"/api/canned-replies/{rid}")
    call("get", "/api/canned-replies/{reply_id}", f"/api/canned-replies/{rid}")  # 404
    call("put", one + "/viewing", f"/api/conversations/{conversation_id}/viewing", {"typing": True})
    call("get", one + "/viewers", f"/api/conversations/{conversation_id}/viewers")
    call("get", "/api/me")
    response = http.get("/api/me")  # 401 without a token
    checker.check("/api/me", "get", response)
