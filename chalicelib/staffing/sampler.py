"""What the `staffing_sampler` schedule does every 5 minutes: a presence sample
(chalicelib.staffing.presence), then the nightly forecast when it is due and the burst and
understaffed checks (chalicelib.staffing.alerts). An alert failure is logged and never undoes or
repeats the sample already written."""
from __future__ import annotations

from typing import Dict, Optional


def run(now_ms: Optional[int] = None) -> Dict[str, int]:
    from chalicelib.logs import describe_error, logger
    from chalicelib.runtime import runtime
    from chalicelib.staffing import alerts, presence

    now = runtime.now_ms() if now_ms is None else now_ms
    outcome = presence.sample(now)
    try:
        alerts.refresh_forecast(now)
        outcome["alerts"] = len(alerts.check(now, float(outcome["online"])))
    except Exception as error:  # noqa: BLE001 - the sample stands; the next run tries again
        logger.error("staffing alerts failed", extra={"error": describe_error(error)})
        outcome["alerts"] = 0
    return outcome
