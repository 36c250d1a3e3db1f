"""The escalation SNS topic (the stack's `EscalationTopicArn`, subscribed by the on-call e-mail):
alerts that are about the whole floor rather than one conversation (listening spikes, staffing
bursts and gaps) are published here as well as shown in the app. Locally there is no topic."""
from __future__ import annotations

import json
import os
from typing import Any, Dict


def publish(kind: str, subject: str, data: Dict[str, Any]) -> bool:
    """One message on the topic: `subject` for the e-mail line, the JSON body for machines.
    False when no topic is configured (local runs, tests without one)."""
    from chalicelib import aws
    from chalicelib.logs import logger

    arn = os.environ.get("ESCALATION_TOPIC_ARN")
    if not arn:
        return False
    aws.client("sns").publish(TopicArn=arn, Subject=f"socialinbox: {subject}"[:100],
                              Message=json.dumps({"kind": kind, **data}, sort_keys=True, default=str))
    logger.info("alert published", extra={"kind": kind})
    return True
