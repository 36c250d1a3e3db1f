"""HTTP routes of SLA policies (a Chalice blueprint, admins only). Views stay thin: parse, call
chalicelib.sla.policies, shape. Validation problems are 400 with a message naming the field,
unknown ids 404, a name already used 409."""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.api.common import json_body
from chalice import BadRequestError, Blueprint, ConflictError, NotFoundError, Response

from chalicelib.api.routes import admin_only

sla_api = Blueprint(__name__)

MAX_BODY_BYTES = 64 * 1024


def _body() -> Dict[str, Any]:
    return json_body(sla_api.current_request, MAX_BODY_BYTES)


def _now_ms() -> int:
    from chalicelib.runtime import runtime

    return runtime.now_ms()


@sla_api.route("/api/sla-policies", methods=["GET"])
@admin_only
def list_sla_policies(identity: Any) -> Any:
    from chalicelib.sla import policies

    return {"items": policies.list_policies(), "default": policies.default_policy().to_json()}


@sla_api.route("/api/sla-policies", methods=["POST"])
@admin_only
def create_sla_policy(identity: Any) -> Any:
    from chalicelib.sla import policies

    body = _body()
    try:
        created = policies.create_policy(body, _now_ms())
    except policies.DuplicateName as error:
        raise ConflictError(f"a policy named {str(error)!r} already exists")
    except ValueError as error:
        raise BadRequestError(str(error))
    return Response(created, status_code=201, headers={"Location": f"/api/sla-policies/{created['id']}"})


@sla_api.route("/api/sla-policies/{policy_id}", methods=["GET"])
@admin_only
def get_sla_policy(policy_id: str, identity: Any) -> Any:
    from chalicelib.sla import policies

    try:
        return policies.get_policy(policy_id)
    except policies.NotFound:
        raise NotFoundError("no such SLA policy")


@sla_api.route("/api/sla-policies/{policy_id}", methods=["PUT"])
@admin_only
def replace_sla_policy(policy_id: str, identity: Any) -> Any:
    from chalicelib.sla import policies

    body = _body()
    try:
        return policies.replace_policy(policy_id, body, _now_ms())
    except policies.NotFound:
        raise NotFoundError("no such SLA policy")
    except policies.DuplicateName as error:
        raise ConflictError(f"a policy named {str(error)!r} already exists")
    except ValueError as error:
        raise BadRequestError(str(error))


@sla_api.route("/api/sla-policies/{policy_id}", methods=["DELETE"])
@admin_only
def delete_sla_policy(policy_id: str, identity: Any) -> Any:
    from chalicelib.sla import policies

    try:
        policies.delete_policy(policy_id)
    except policies.NotFound:
        raise NotFoundError("no such SLA policy")
    return Response(body="", status_code=204)
