"""Staffing: the queueing formulas against published check values and independent oracles (the
textbook factorial formula in exact arithmetic, a seeded simulation of M/M/N+M), and the
calculator's contract through its route."""
from __future__ import annotations

import heapq
import json
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from chalicelib.staffing import calculator, erlang

JSON = {"Content-Type": "application/json"}
CHECK = {"arrivals": 100, "interval_seconds": 1800, "handle_seconds": 180, "target_seconds": 20,
         "target_pct": 80, "model": "erlang_c", "shrinkage_pct": 30, "max_occupancy_pct": 85}


def factorial_erlang_c(agents: int, traffic: Fraction) -> Fraction:
    """C(N, A) straight from the textbook definition, in exact rational arithmetic."""
    top = traffic ** agents / math.factorial(agents) * Fraction(agents) / (agents - traffic)
    return top / (sum(traffic ** k / math.factorial(k) for k in range(agents)) + top)


def simulate_erlang_a(agents: int, arrival_rate: float, handle: float, patience: float, target: float,
                      customers: int, seed: int) -> float:
    """Share of arrivals answered within `target` in a first-come-first-served M/M/N+M queue."""
    rng = random.Random(seed)
    now, free_at = 0.0, [0.0] * agents
    heapq.heapify(free_at)
    answered = 0
    waiting: list = []  # (arrival time, gives up at), FIFO
    for _ in range(customers):
        now += rng.expovariate(arrival_rate)
        waiting.append((now, now + rng.expovariate(1.0 / patience)))
        # Serve everyone whose agent frees up before this arrival (FIFO, skipping those gone).
        while waiting and free_at[0] <= now:
            start = max(free_at[0], waiting[0][0])
            arrived, gives_up = waiting.pop(0)
            if gives_up < start:
                continue
            heapq.heapreplace(free_at, start + rng.expovariate(1.0 / handle))
            answered += start - arrived <= target
    return answered / customers


def test_erlang_c_published_check_values():
    performance = erlang.erlang_c_performance(14, 10.0, 180, 20)
    assert round(performance.wait_probability, 3) == 0.174
    assert round(performance.service_level, 3) == 0.888
    assert round(performance.occupancy, 3) == 0.714
    assert round(performance.average_wait, 1) == 7.8
    assert erlang.rostered(14, 0.30) == 20


def test_the_calculator_answers_the_published_example():
    answer = calculator.calculate(CHECK)
    assert answer["agents"] == 14 and answer["rostered"] == 20
    assert answer["service_level_pct"] == pytest.approx(88.84, abs=0.01)
    assert answer["occupancy_pct"] == pytest.approx(71.43, abs=0.01)
    assert answer["wait_probability_pct"] == pytest.approx(17.41, abs=0.01)
    assert 13 < answer["agents_raw"] < 14  # fractional: 13 agents give 79.6 %, just short of 80 %


@given(st.integers(min_value=1, max_value=60), st.fractions(min_value=Fraction(1, 10), max_value=59))
def test_erlang_c_matches_the_factorial_formula(agents, traffic):
    if traffic >= agents:
        assert erlang.erlang_c(agents, float(traffic)) == 1.0
        return
    assert erlang.erlang_c(agents, float(traffic)) == pytest.approx(float(factorial_erlang_c(agents, traffic)),
                                                                   rel=1e-9, abs=1e-12)


def test_stable_at_a_thousand_agents():
    requirement = erlang.required_agents(950.0, 180, 20, 0.8)
    assert 950 < requirement.agents < 1000
    assert 0.8 <= requirement.performance.service_level < 0.9
    assert math.isfinite(requirement.agents_raw)
    patient = erlang.required_agents(950.0, 180, 20, 0.8, patience=300)
    assert 900 < patient.agents <= requirement.agents


def test_erlang_a_tends_to_erlang_c_when_nobody_gives_up():
    patient = erlang.erlang_a_performance(14, 10.0, 180, 20, patience=1e9)
    assert patient.service_level == pytest.approx(0.8884, abs=1e-4)
    assert patient.wait_probability == pytest.approx(0.1741, abs=1e-4)
    assert patient.abandon_probability < 1e-6


def test_erlang_a_agrees_with_a_simulation():
    # 10 Erlangs, 12 agents, callers give up after 2 minutes on average.
    model = erlang.erlang_a_performance(12, 10.0, 180, 20, patience=120)
    simulated = simulate_erlang_a(12, 10.0 / 180, 180, 120, 20, customers=60_000, seed=7)
    assert model.service_level == pytest.approx(simulated, abs=0.015)
    # Overloaded: Erlang C has no answer, Erlang A still does (those who give up keep it stable).
    overloaded = erlang.erlang_a_performance(8, 10.0, 180, 20, patience=60)
    assert overloaded.service_level == pytest.approx(
        simulate_erlang_a(8, 10.0 / 180, 180, 60, 20, customers=60_000, seed=11), abs=0.015)
    assert 0.2 < overloaded.abandon_probability < 0.35


def test_max_occupancy_raises_the_requirement():
    loose = calculator.calculate({**CHECK, "target_pct": 50, "max_occupancy_pct": 100})
    capped = calculator.calculate({**CHECK, "target_pct": 50, "max_occupancy_pct": 60})
    assert capped["agents"] == math.ceil(10 / 0.6) > loose["agents"]
    assert capped["occupancy_pct"] <= 60


def test_concurrency_divides_the_handle_time():
    single = calculator.calculate({**CHECK, "handle_seconds": 360})
    double = calculator.calculate({**CHECK, "handle_seconds": 360, "concurrency": 2})
    assert double["traffic_erlangs"] == pytest.approx(single["traffic_erlangs"] / 2)
    assert double["agents"] == calculator.calculate(CHECK)["agents"]


def test_no_arrivals_needs_nobody():
    for model in ("erlang_c", "workload"):
        answer = calculator.calculate({**CHECK, "arrivals": 0, "model": model})
        assert answer["agents"] == 0 and answer["rostered"] == 0


def test_workload_model_for_asynchronous_channels():
    # 40 comments an hour, 4-minute handle, a 4-hour target at 80 % occupancy, 60 waiting already.
    body = {"arrivals": 20, "interval_seconds": 1800, "handle_seconds": 240, "target_seconds": 4 * 3600,
            "target_pct": 100 - 1e-9, "model": "workload", "max_occupancy_pct": 80, "backlog": 60}
    answer = calculator.calculate(body)
    needed = (40 * 4 + 60) * 240 / (4 * 3600 * 0.8)
    assert answer["agents_raw"] == pytest.approx(needed, abs=0.01)
    assert answer["agents"] == math.ceil(needed)
    assert answer["wait_probability_pct"] is None and answer["average_wait_seconds"] is None


@pytest.mark.parametrize("change, field", [
    ({"arrivals": -1}, "arrivals"), ({"arrivals": True}, "arrivals"), ({"arrivals": "10"}, "arrivals"),
    ({"handle_seconds": 0}, "handle_seconds"), ({"target_pct": 100}, "target_pct"),
    ({"target_pct": 0}, "target_pct"), ({"interval_seconds": 10}, "interval_seconds"),
    ({"model": "erlang_x"}, "model"), ({"model": "erlang_a"}, "patience_seconds"),
    ({"patience_seconds": 60}, "patience_seconds"), ({"shrinkage_pct": 100}, "shrinkage_pct"),
    ({"max_occupancy_pct": 0}, "max_occupancy_pct"), ({"concurrency": 0.5}, "concurrency"),
    ({"backlog": 5}, "backlog"), ({"surprise": 1}, "surprise"), ({"arrivals": 10_000_000}, "Erlangs"),
    ({"arrivals": 1e308}, "arrivals"),
])
def test_impossible_input_names_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        calculator.calculate({**CHECK, **change})


def test_route_answers_managers_and_refuses_agents(inbox):
    admin = inbox.login_admin()
    headers = {**JSON, "Authorization": "Bearer " + admin}
    answer = inbox.client.http.post("/api/staffing/calculate", headers=headers, body=json.dumps(CHECK))
    assert answer.status_code == 200, answer.body
    assert json.loads(answer.body)["agents"] == 14
    for raw in (b"NaN", b'{"arrivals": NaN}', b'{"arrivals": "\\ud800"}', b"[1]", b"{" * 5000):
        bad = inbox.client.http.post("/api/staffing/calculate", headers=headers, body=raw)
        assert bad.status_code == 400, (raw[:20], bad.body)
    created = inbox.client.http.post("/api/agents", headers=headers, body=json.dumps(
        {"email": "kim@example.com", "name": "Kim", "role": "agent", "teams": ["default"],
         "password": "a long enough password"}))
    assert created.status_code == 201, created.body
    token = json.loads(inbox.client.http.post("/api/auth/login", headers=JSON, body=json.dumps(
        {"email": "kim@example.com", "password": "a long enough password"})).body)["token"]
    refused = inbox.client.http.post("/api/staffing/calculate", headers={**JSON, "Authorization": "Bearer " + token},
                                     body=json.dumps(CHECK))
    assert refused.status_code == 403
    assert inbox.client.http.post("/api/staffing/calculate", headers=JSON, body=json.dumps(CHECK)).status_code == 401
