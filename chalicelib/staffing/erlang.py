"""Queueing formulas for staffing, in pure Python (no numpy, no factorials: Lambda-sized).

Live channels (reply targets in minutes) are modelled as queues:
- Erlang C (M/M/N): nobody gives up; computed through the Erlang B recursion, stable at
  thousands of agents.
- Erlang A (M/M/N+M, Palm): customers give up after an exponential patience; solved exactly from
  the birth-death chain (truncated where the tail is below 1e-15), the service level by
  uniformisation. It stays defined when traffic exceeds the agents (Erlang C does not).
Asynchronous channels (comments, mentions: targets in hours) are not queues in that sense: the
`workload` model asks for enough capacity across the SLA window.

All times are in seconds. `traffic` is the offered load in Erlangs: arrivals per second times
the handle time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

#: Where the birth-death chain and the Poisson sums are cut off.
TAIL = 1e-15
#: No model answers more agents than this (a guard against runaway loops on absurd input).
MAX_AGENTS = 100_000


@dataclass(frozen=True)
class Performance:
    """How a number of agents is expected to do in one interval."""

    agents: int
    service_level: float  # share of arrivals answered within the target (0..1)
    wait_probability: float  # share of arrivals that wait at all
    average_wait: float  # seconds, over all arrivals
    occupancy: float  # share of agent time spent handling (0..1)
    abandon_probability: float = 0.0  # Erlang A only


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability B(N, A) by the recursion B_k = A·B_{k-1} / (k + A·B_{k-1})."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return blocking


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that an arrival waits, C(N, A) = N·B / (N − A(1 − B)); 1 when N ≤ A."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = erlang_b(agents, traffic)
    return agents * blocking / (agents - traffic * (1 - blocking))


def erlang_c_performance(agents: int, traffic: float, handle: float, target: float) -> Performance:
    """Service level SL(T) = 1 − C·e^{−(N−A)·T/AHT}, ASA = C·AHT/(N−A), occupancy A/N."""
    if traffic <= 0:
        return Performance(agents, 1.0, 0.0, 0.0, 0.0)
    if agents <= traffic:
        return Performance(agents, 0.0, 1.0, math.inf, 1.0)
    wait = erlang_c(agents, traffic)
    service_level = 1.0 - wait * math.exp(-(agents - traffic) * target / handle)
    return Performance(agents, service_level, wait, wait * handle / (agents - traffic), traffic / agents)


def _stationary(agents: int, arrival_rate: float, service_rate: float, abandon_rate: float) -> List[float]:
    """Stationary distribution of M/M/N+M (customers in system), truncated past the agents
    where the next state's share falls below TAIL. Built in log space-free relative terms
    scaled as it goes, so large N cannot overflow."""
    weights = [1.0]
    total = 1.0
    k = 0
    while True:
        k += 1
        death = min(k, agents) * service_rate + max(k - agents, 0) * abandon_rate
        weight = weights[-1] * arrival_rate / death
        weights.append(weight)
        total += weight
        if total > 1e250:  # rescale: only ratios matter
            weights = [w / total for w in weights]
            total = 1.0
        if k > agents and weight < TAIL * total:
            break
        if k > agents + 10 * MAX_AGENTS:
            break
    return [w / total for w in weights]


def _served_within(most_ahead: int, agents: int, service_rate: float, abandon_rate: float,
                   target: float) -> List[float]:
    """For each i in 0..most_ahead: the probability that an arrival finding i customers queued
    ahead of it (all agents busy) starts service within `target` seconds and before its own
    patience runs out. The tagged caller moves down a chain (one of those ahead leaves, at
    N·μ + i·θ) and may exit (gives up, at θ); solved for every i at once by uniformisation:
    f_{n+1}(i) = stay_i·f_n(i) + advance_i·f_n(i−1), f_n(−1) = 1, answer = Σ Poisson(n)·f_n."""
    size = most_ahead + 1
    if target <= 0:
        return [0.0] * size
    uniform = agents * service_rate + (most_ahead + 1) * abandon_rate
    mean = uniform * target
    advance = [(agents * service_rate + i * abandon_rate) / uniform for i in range(size)]
    stay = [1.0 - advance[i] - abandon_rate / uniform for i in range(size)]
    reached = [0.0] * size  # f_n
    answer = [0.0] * size
    covered = 0.0
    log_mean = math.log(mean) if mean > 0 else 0.0
    n = 0
    limit = int(mean + 12 * math.sqrt(mean + 1) + 30)
    while n <= limit:
        weight = math.exp(n * log_mean - mean - math.lgamma(n + 1)) if mean > 0 else float(n == 0)
        if weight:
            for i in range(size):
                answer[i] += weight * reached[i]
        covered += weight
        if covered > 1 - TAIL:
            break
        reached = [stay[i] * reached[i] + advance[i] * (reached[i - 1] if i else 1.0) for i in range(size)]
        n += 1
    # The Poisson mass not summed can only add to each answer: bound it from below.
    return [value + (1.0 - covered) * reached[i] for i, value in enumerate(answer)]


def erlang_a_performance(agents: int, traffic: float, handle: float, target: float,
                         patience: float) -> Performance:
    """Erlang A for `agents` with mean patience `patience` seconds. The service level is the
    share of all arrivals answered within the target (those who give up first are misses)."""
    if traffic <= 0:
        return Performance(agents, 1.0, 0.0, 0.0, 0.0)
    service_rate = 1.0 / handle
    arrival_rate = traffic * service_rate
    abandon_rate = 1.0 / patience
    if agents == 0:
        return Performance(0, 0.0, 1.0, patience, 0.0, 1.0)
    shares = _stationary(agents, arrival_rate, service_rate, abandon_rate)
    wait_probability = sum(shares[agents:])
    queued_mean = sum((k - agents) * p for k, p in enumerate(shares) if k > agents)
    abandon_probability = abandon_rate * queued_mean / arrival_rate
    busy = sum(min(k, agents) * p for k, p in enumerate(shares))
    served = _served_within(len(shares) - 1 - agents, agents, service_rate, abandon_rate, target)
    answered_in_time = sum(shares[:agents]) + sum(shares[k] * served[k - agents] for k in range(agents, len(shares)))
    return Performance(agents, min(1.0, answered_in_time), wait_probability, queued_mean / arrival_rate,
                       busy / agents, abandon_probability)


@dataclass(frozen=True)
class Requirement:
    """What a queue needs: whole agents on the floor, and the fractional figure to add up over
    intervals (rounding each interval first overstaffs; round over a shift)."""

    agents: int
    agents_raw: float
    performance: Performance


def required_agents(traffic: float, handle: float, target: float, target_share: float,
                    max_occupancy: float = 1.0, patience: Optional[float] = None) -> Requirement:
    """The fewest agents whose service level reaches `target_share` (Erlang C, or Erlang A with a
    `patience`) and whose occupancy stays at or under `max_occupancy`. No traffic needs nobody.

    The fractional requirement interpolates the service level linearly between the last
    insufficient and the first sufficient whole number (from the traffic itself when even
    N−1 cannot keep up), then takes the occupancy floor A / max_occupancy if that is higher."""
    if traffic <= 0:
        return Requirement(0, 0.0, Performance(0, 1.0, 0.0, 0.0, 0.0))

    def perform(n: int) -> Performance:
        if patience is None:
            return erlang_c_performance(n, traffic, handle, target)
        return erlang_a_performance(n, traffic, handle, target, patience)

    # The service level grows with the agents: gallop up from the least stable number, then
    # bisect (Erlang A at a thousand agents costs ~10 ms an evaluation; a linear walk would not do).
    low = max(1, int(math.floor(traffic)) + 1) if patience is None else 1
    high = low
    while perform(high).service_level < target_share:
        if high >= MAX_AGENTS:
            raise ValueError("the target cannot be reached with any sensible number of agents")
        low, high = high + 1, min(MAX_AGENTS, high * 2)
    while low < high:
        middle = (low + high) // 2
        if perform(middle).service_level >= target_share:
            high = middle
        else:
            low = middle + 1
    agents = high
    performance = perform(agents)
    if agents > 1:
        below = perform(agents - 1)
        floor_agents, floor_level = float(agents - 1), below.service_level
        if patience is None and agents - 1 <= traffic:
            floor_agents, floor_level = traffic, 0.0
        span = performance.service_level - floor_level
        raw = floor_agents + ((target_share - floor_level) / span if span > 0 else 1.0) * (agents - floor_agents)
        raw = min(float(agents), max(floor_agents, raw))
    else:
        raw = float(agents) * (target_share / performance.service_level if performance.service_level else 1.0)
    occupancy_floor = traffic / max_occupancy
    while traffic / agents > max_occupancy + 1e-12 and agents < MAX_AGENTS:
        agents += 1
        performance = perform(agents)
    return Requirement(agents, max(raw, occupancy_floor), performance)


def rostered(agents_on_floor: float, shrinkage: float) -> int:
    """People to schedule so that `agents_on_floor` are available: ⌈N / (1 − shrinkage)⌉."""
    if agents_on_floor <= 0:
        return 0
    return math.ceil(agents_on_floor / (1.0 - shrinkage) - 1e-9)


def workload_agents(arrivals: float, backlog: float, handle: float, window: float,
                    max_occupancy: float) -> float:
    """Asynchronous channels: agents needed so that the work arriving over the SLA window, plus
    the backlog already waiting, is handled within the window at the given occupancy."""
    if window <= 0:
        raise ValueError("window must be positive")
    return (arrivals + backlog) * handle / (window * max_occupancy)
