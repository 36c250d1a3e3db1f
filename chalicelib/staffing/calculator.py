"""The staffing calculator: one interval's demand and targets in, the agents it needs out.

The contract (`POST /api/staffing/calculate`, others build on it):
    {"arrivals", "interval_seconds", "handle_seconds", "target_seconds", "target_pct",
     "model": "erlang_c"|"erlang_a"|"workload", "concurrency" (1), "shrinkage_pct" (0),
     "max_occupancy_pct" (100), "patience_seconds" (Erlang A), "backlog" (workload, 0)}
 -> {"agents", "agents_raw", "service_level_pct", "occupancy_pct", "wait_probability_pct",
     "average_wait_seconds", "rostered", "traffic_erlangs", "abandon_pct", "model"}

Definitions:
- traffic (Erlangs) = arrivals / interval × handle time ÷ concurrency: an agent working k
  conversations at once is treated as k servers' worth of handle time (the common chat
  approximation; the handle time should be measured at the concurrency actually worked).
- agents: whole agents on the floor meeting both the service level and the occupancy cap;
  agents_raw: the fractional requirement (sum these over intervals, round over a shift);
  rostered: ⌈agents ÷ (1 − shrinkage)⌉.
- workload (asynchronous channels, targets in hours): the work arriving over the target window
  plus the backlog, done within the window at the occupancy cap; no wait probability or
  average wait (null), the service level is the share of that work the agents can finish in
  time (FIFO).
Impossible input is a ValueError naming the field (the API answers 400); no arrivals is 0 agents.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

from chalicelib.staffing import erlang

MODELS = ("erlang_c", "erlang_a", "workload")
#: Bounds that keep every model's loops finite and the answers meaningful.
MAX_ARRIVALS = 10_000_000
MAX_SECONDS = 31 * 24 * 3600
MAX_CONCURRENCY = 20
MAX_TRAFFIC = 20_000.0

FIELDS = ("arrivals", "interval_seconds", "handle_seconds", "target_seconds", "target_pct", "model",
          "concurrency", "shrinkage_pct", "max_occupancy_pct", "patience_seconds", "backlog")


def _number(body: Dict[str, Any], name: str, low: float, high: float, default: Optional[float] = None,
            low_open: bool = False, high_open: bool = False) -> float:
    value = body.get(name, default)
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low:g}, {high:g}{right}")
    return float(value)


def calculate(body: Dict[str, Any]) -> Dict[str, Any]:
    """Validate the contract's input and answer its output (see the module docstring)."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    model = body.get("model", "erlang_c")
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}")
    arrivals = _number(body, "arrivals", 0, MAX_ARRIVALS)
    interval = _number(body, "interval_seconds", 60, 86_400)
    handle = _number(body, "handle_seconds", 0, MAX_SECONDS, low_open=True)
    target = _number(body, "target_seconds", 0, MAX_SECONDS, low_open=True)
    target_share = _number(body, "target_pct", 0, 100, low_open=True, high_open=True) / 100.0
    concurrency = _number(body, "concurrency", 1, MAX_CONCURRENCY, default=1)
    shrinkage = _number(body, "shrinkage_pct", 0, 100, default=0, high_open=True) / 100.0
    max_occupancy = _number(body, "max_occupancy_pct", 0, 100, default=100, low_open=True) / 100.0
    patience = None
    if model == "erlang_a":
        patience = _number(body, "patience_seconds", 0, MAX_SECONDS, low_open=True)
    elif body.get("patience_seconds") is not None:
        raise ValueError("patience_seconds applies to erlang_a only")
    backlog = _number(body, "backlog", 0, MAX_ARRIVALS, default=0)
    if model != "workload" and backlog:
        raise ValueError("backlog applies to the workload model only")

    effective_handle = handle / concurrency
    traffic = arrivals / interval * effective_handle
    if traffic > MAX_TRAFFIC:
        raise ValueError(f"the offered load is {traffic:.0f} Erlangs; at most {MAX_TRAFFIC:.0f} can be modelled")
    if model == "workload":
        return _workload(arrivals / interval, backlog, effective_handle, target, target_share, max_occupancy,
                         shrinkage, traffic)
    requirement = erlang.required_agents(traffic, effective_handle, target, target_share, max_occupancy, patience)
    performance = requirement.performance
    return {
        "model": model,
        "traffic_erlangs": round(traffic, 4),
        "agents": requirement.agents,
        "agents_raw": round(requirement.agents_raw, 3),
        "service_level_pct": round(100 * performance.service_level, 2),
        "occupancy_pct": round(100 * performance.occupancy, 2),
        "wait_probability_pct": round(100 * performance.wait_probability, 2),
        "average_wait_seconds": round(performance.average_wait, 2),
        "abandon_pct": round(100 * performance.abandon_probability, 2) if model == "erlang_a" else None,
        "rostered": erlang.rostered(requirement.agents, shrinkage),
    }


def _workload(rate: float, backlog: float, handle: float, window: float, target_share: float,
              max_occupancy: float, shrinkage: float, traffic: float) -> Dict[str, Any]:
    # The target share applies to the window's work: finishing that share in time is enough.
    raw = erlang.workload_agents(rate * window, backlog, handle, window, max_occupancy) * target_share
    agents = math.ceil(raw - 1e-9)
    needed = erlang.workload_agents(rate * window, backlog, handle, window, max_occupancy)
    share = 1.0 if needed == 0 else min(1.0, agents / needed)
    return {
        "model": "workload",
        "traffic_erlangs": round(traffic, 4),
        "agents": agents,
        "agents_raw": round(raw, 3),
        "service_level_pct": round(100 * share, 2),
        "occupancy_pct": round(100 * (traffic / agents), 2) if agents else 0.0,
        "wait_probability_pct": None,
        "average_wait_seconds": None,
        "abandon_pct": None,
        "rostered": erlang.rostered(agents, shrinkage),
    }
