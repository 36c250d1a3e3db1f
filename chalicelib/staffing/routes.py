"""HTTP routes of staffing (a Chalice blueprint, supervisors and admins): thin, the work is in
chalicelib.staffing. Bad input is 400 naming the field."""
from __future__ import annotations

from typing import Any

from chalice import BadRequestError, Blueprint, ForbiddenError

from chalicelib.api.common import json_body
from chalicelib.api.routes import authenticated

staffing_api = Blueprint(__name__)

MAX_BODY_BYTES = 4 * 1024
MANAGERS = ("admin", "supervisor")


def _managers_only(identity: Any) -> None:
    if identity.role not in MANAGERS:
        raise ForbiddenError("only admins and supervisors may use staffing")


@staffing_api.route("/api/staffing/calculate", methods=["POST"])
@authenticated
def calculate(identity: Any) -> Any:
    """Agents one interval needs (Erlang C, Erlang A or the asynchronous workload model)."""
    _managers_only(identity)
    from chalicelib.staffing import calculator

    body = json_body(staffing_api.current_request, MAX_BODY_BYTES)
    try:
        return calculator.calculate(body)
    except ValueError as error:
        raise BadRequestError(str(error))
