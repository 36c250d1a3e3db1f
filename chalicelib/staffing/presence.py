"""Agents online, as history: a scheduled sample of every team's presence.

Every SAMPLE_MINUTES the `staffing_sampler` schedule reads each team's members' presence (the
routing directory: one Query for the teams, one BatchGet per team) and adds to the team's
30-minute interval item (table `staffing`, `pk` = "presence#<team>", `sk` = "i#<interval ms>"):
`samples` + 1, `online` + agents online, `away` + agents signed in but away. The average online in
an interval is online / samples; the measured shrinkage share of a period is away / (online +
away): time signed in but not available, shown next to the admin's shrinkage setting.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from chalicelib import config

SAMPLE_MINUTES = 5
INTERVAL_MS = 30 * 60_000


def table() -> str:
    return config.table_name("staffing")


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


def sample(now_ms: Optional[int] = None) -> Dict[str, int]:
    """One sample of every team's presence, added to its current interval."""
    from chalicelib.routing import directory
    from chalicelib.runtime import runtime

    now = runtime.now_ms() if now_ms is None else now_ms
    interval = now - now % INTERVAL_MS
    teams = 0
    everyone_online = set()
    for team in directory.all_teams():
        members = directory.team(team).members
        profiles = directory.profiles(members).values() if members else []
        online = sum(1 for p in profiles if p.online(now))
        everyone_online.update(p.agent_id for p in profiles if p.online(now))
        away = sum(1 for p in profiles if p.presence == "away" and not p.gone(now))
        _client().update_item(
            TableName=table(), Key={"pk": {"S": f"presence#{team}"}, "sk": {"S": f"i#{interval:013d}"}},
            UpdateExpression="ADD samples :one, #online :online, #away :away",
            ExpressionAttributeNames={"#online": "online", "#away": "away"},  # reserved words
            ExpressionAttributeValues={":one": {"N": "1"}, ":online": {"N": str(online)}, ":away": {"N": str(away)}})
        teams += 1
    return {"teams": teams, "online": len(everyone_online)}


def history(teams: Iterable[str], from_ms: int, to_ms: int) -> Dict[str, Any]:
    """{"online": {interval start (epoch s): average agents online}, "away_share": share of
    signed-in time spent away (None without samples)} over the teams, summed."""
    online: Dict[int, float] = {}
    total_online = total_away = 0.0
    for team in teams:
        query: Dict[str, Any] = {
            "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": {"S": f"presence#{team}"}, ":a": {"S": f"i#{from_ms:013d}"},
                                          ":b": {"S": f"i#{to_ms:013d}"}}}
        while True:
            page = _client().query(**query)
            for item in page.get("Items", []):
                samples = int(item["samples"]["N"]) or 1
                start = int(item["sk"]["S"][2:]) // 1000
                there, away = int(item.get("online", {}).get("N", "0")), int(item.get("away", {}).get("N", "0"))
                online[start] = online.get(start, 0.0) + there / samples
                total_online += there
                total_away += away
            if not page.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    signed_in = total_online + total_away
    return {"online": online, "away_share": round(total_away / signed_in, 4) if signed_in else None}
