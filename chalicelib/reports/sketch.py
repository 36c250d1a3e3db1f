"""Mergeable log-bucket histograms (DDSketch's logarithmic mapping) for percentiles.

A duration x >= 1 s falls in bucket k = ceil(log(x) / log(gamma)), gamma = (1 + a) / (1 - a);
every value of bucket k lies in (gamma^(k-1), gamma^k], so the bucket's estimate
2 gamma^k / (gamma + 1) is within a relative error a of it. Sub-second durations share bucket 0
(estimated as 0 s). Buckets are plain counters, so histograms of days, channels and agents merge
by adding, which DynamoDB does with `ADD` on top-level number attributes (`<metric>_h<k>`).
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional

RELATIVE_ERROR = 0.02
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)


def bucket_of(seconds: float) -> int:
    """The bucket of a duration in seconds (0 for anything under a second)."""
    if seconds < 1:
        return 0
    return max(1, math.ceil(math.log(seconds) / _LOG_GAMMA - 1e-12))


def estimate(bucket: int) -> float:
    """The value that stands for a bucket: within RELATIVE_ERROR of every value in it."""
    if bucket <= 0:
        return 0.0
    return 2 * GAMMA ** bucket / (GAMMA + 1)


def histogram_of(counters: Mapping[str, float], metric: str) -> Dict[int, int]:
    """{bucket: count} of `metric` out of a merged counter item."""
    prefix = f"{metric}_h"
    found: Dict[int, int] = {}
    for name, value in counters.items():
        if name.startswith(prefix) and name[len(prefix):].isdigit() and value:
            found[int(name[len(prefix):])] = int(value)
    return found


def quantile(histogram: Mapping[int, int], q: float) -> Optional[float]:
    """The q-quantile (0..1) in seconds, None when empty. Nearest rank: the ceil(q * n)-th
    smallest value (the median of 1, 2, 3, 4 is 2; the p90 of 120 and 1800 is 1800)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(0, math.ceil(q * total - 1e-9) - 1)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen > rank:
            return estimate(bucket)
    return estimate(max(histogram))  # pragma: no cover - unreachable with positive counts
