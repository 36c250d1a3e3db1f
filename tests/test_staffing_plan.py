"""The staffing plan: forecast demand turned into agents per interval with the model the reply
target calls for, the gap against agents online, and burst detection."""
from __future__ import annotations

import math

import pytest

from chalicelib.staffing import erlang
from chalicelib.staffing.forecast import INTERVAL_SECONDS, WEEK_SECONDS
from chalicelib.staffing.plan import Targets, build, burst, required

NOW = 1_797_206_400  # a Monday 00:00 UTC
LIVE = Targets(target_seconds=20, target_share=0.8, handle_seconds=180, max_occupancy=1.0)
PUBLIC = Targets(target_seconds=4 * 3600, target_share=0.9, handle_seconds=240, max_occupancy=0.8)


def test_live_targets_use_erlang_c_and_the_published_example():
    assert LIVE.model == "erlang_c"
    assert required(100, LIVE) == {"required_raw": pytest.approx(13.047, abs=0.001), "required": 14}
    assert required(0, LIVE) == {"required_raw": 0.0, "required": 0}


def test_hour_targets_use_the_workload_model():
    assert PUBLIC.model == "workload"
    need = required(30, PUBLIC)  # 60 an hour, 4 min each, 80 % occupancy, 90 % in time
    assert need["required_raw"] == pytest.approx(60 * 240 / 3600 / 0.8 * 0.9, abs=0.001)
    assert need["required"] == math.ceil(need["required_raw"])


def test_concurrency_lowers_the_requirement():
    assert required(100, Targets(20, 0.8, 360, concurrency=2, max_occupancy=1.0))["required"] == 14


def test_plan_shows_history_forecast_gap_and_accuracy():
    history = {start: 100.0 for start in range(NOW - 6 * WEEK_SECONDS, NOW, INTERVAL_SECONDS)}
    online = {start: 10.0 for start in range(NOW - 7 * 86_400, NOW, INTERVAL_SECONDS)}
    plan = build(history, online, NOW, LIVE, days=2)
    kinds = [i["kind"] for i in plan["intervals"]]
    assert kinds.count("history") == 7 * 48 and kinds.count("forecast") == 2 * 48
    forecast_rows = [i for i in plan["intervals"] if i["kind"] == "forecast"]
    assert {i["required"] for i in forecast_rows} == {14}
    assert plan["accuracy"]["interval_wape"] == 0.0 and plan["accuracy"]["days"] == 7
    # 7 days x 48 intervals short of 13.05 - 10 agents each, for half an hour.
    assert plan["understaffed_agent_hours"] == pytest.approx(7 * 48 * (13.047 - 10) / 2, rel=0.001)
    assert plan["model"] == "erlang_c" and plan["targets"]["target_pct"] == 80


def test_burst_needs_a_clear_margin():
    assert burst(40, 12, [10, 15, 14])
    assert not burst(20, 12, [10, 15, 14])  # not twice the forecast
    assert not burst(40, 12, [10, 45])  # seen before in this slot
    assert not burst(3, 1, [1, 1])  # too few to matter


def test_required_is_monotone_in_arrivals():
    previous = -1.0
    for arrivals in range(0, 400, 7):
        raw = required(arrivals, LIVE)["required_raw"]
        assert raw >= previous
        previous = raw
    assert erlang.required_agents(1e-9, 180, 20, 0.8).agents == 1


def test_predicted_share_of_the_agents_who_were_there():
    from chalicelib.staffing.plan import predicted_share

    assert predicted_share(100, 14, LIVE) == pytest.approx(88.8, abs=0.1)  # the published example
    assert predicted_share(100, 14.9, LIVE) == predicted_share(100, 14, LIVE)  # whole people answer
    assert predicted_share(100, 10, LIVE) == 0.0  # no more agents than the traffic: nobody in time
    assert predicted_share(100, None, LIVE) is None and predicted_share(0, 0, LIVE) == 100.0
    half = required(30, PUBLIC)["required_raw"] / PUBLIC.target_share / 2
    assert predicted_share(30, math.floor(half * 2), PUBLIC) == 100.0
    assert predicted_share(30, 0, PUBLIC) == 0.0
