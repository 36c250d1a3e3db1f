"""GET /health: can this deployment store a delivery and answer an agent?

No authentication (load balancers, uptime checks and the deploy's smoke test call it), so the
answer says only ok/failed per check: no names, counts, errors or settings. The reason for a
failure is logged (WARNING) for ops. Each check is one cheap call the API function's policy
already grants or needs for the check alone: a GetItem of a key that never exists on the
conversations table (0.5 read units), GetQueueAttributes on the ingest and outbox queues.
200 when every check passes, 503 otherwise (a monitor can alarm on the status alone).
"""
from __future__ import annotations

from typing import Callable, Dict

from chalice import Blueprint, Response

from chalicelib import config
from chalicelib.logs import describe_error, logger
from chalicelib.runtime import runtime

health_api = Blueprint(__name__)

#: A key no conversation id can take (ids are `c_<hex>`).
PROBE_KEY = "health-probe"


def _table() -> None:
    runtime.client("dynamodb").get_item(TableName=config.table_name("conversations"),
                                        Key={"conversation_id": {"S": PROBE_KEY}},
                                        ProjectionExpression="conversation_id")


def _queue(short_name: str) -> Callable[[], None]:
    def check() -> None:
        runtime.client("sqs").get_queue_attributes(QueueUrl=runtime.queue_url(short_name),
                                                   AttributeNames=["QueueArn"])
    return check


CHECKS: Dict[str, Callable[[], None]] = {
    "tables": _table,
    "ingest_queue": _queue(config.INGEST_QUEUE),
    "outbox_queue": _queue("outbox"),
}


def run_checks() -> Dict[str, str]:
    """ok/failed per check; every check runs even when an earlier one failed."""
    results: Dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy", said once
            logger.warning("health check failed", extra={"check": name, "error": describe_error(error)[:300]})
            results[name] = "failed"
    return results


@health_api.route("/health", methods=["GET"])
def health() -> Response:
    results = run_checks()
    healthy = all(value == "ok" for value in results.values())
    return Response(body={"status": "ok" if healthy else "unavailable", "checks": results},
                    status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"})
