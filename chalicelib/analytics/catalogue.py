"""What each channel's platform offers for analytics, read from metrics.json (data, not code):
Meta renames and removes insight metrics every few months (2024-03, 2025-01, 2025-04, 2025-11,
2026-06), so a rename is an edit of that file, and a metric the platform stopped serving shows
"no longer available" instead of breaking the report.

`ANALYTICS_METRICS_FILE` names another file of the same shape (an operator's own list)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics.json")
ROLES = ("reach", "followers", "new_followers")


class CatalogueError(ValueError):
    """metrics.json (or the operator's file) is malformed: the message says where."""


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    kind: str = "time_series"  # Instagram: "total_value" metrics are read one day per request;
    # "current": a total the platform answers only as of now (followers), read once a day


@dataclass(frozen=True)
class ChannelAnalytics:
    channel: str
    source: Optional[str]
    fetcher: Optional[str]
    note: str
    metrics: Tuple[Metric, ...] = ()
    roles: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    lookback_days: int = 0
    backfill_days: int = 0
    window_days: int = 1
    refresh_days: int = 1

    @property
    def available(self) -> bool:
        return bool(self.fetcher and self.metrics)

    def names(self, current: bool = False) -> list:
        """The metrics read per day (or, `current`, the totals read as of now)."""
        return [m.name for m in self.metrics if (m.kind == "current") == current]

    def to_json(self) -> Dict[str, Any]:
        return {"available": self.available, "source": self.source, "note": self.note,
                "metrics": [{"name": m.name, "label": m.label} for m in self.metrics],
                **{role: list(self.roles.get(role, ())) for role in ROLES},
                "lookback_days": self.lookback_days or None}


def _int(spec: Mapping[str, Any], name: str, channel: str, default: int, low: int = 0) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > 3660:
        raise CatalogueError(f"{channel}.{name} must be a whole number of days")
    return value


def parse(document: Mapping[str, Any]) -> Dict[str, ChannelAnalytics]:
    """{channel: ChannelAnalytics} of a catalogue document, checked."""
    channels = document.get("channels") if isinstance(document, Mapping) else None
    if not isinstance(channels, Mapping):
        raise CatalogueError("the catalogue needs a `channels` object")
    found: Dict[str, ChannelAnalytics] = {}
    for channel, spec in channels.items():
        if not isinstance(spec, Mapping):
            raise CatalogueError(f"{channel} must be an object")
        metrics: List[Metric] = []
        for name, value in (spec.get("metrics") or {}).items():
            if isinstance(value, str):
                metrics.append(Metric(name, value))
            elif isinstance(value, Mapping) and isinstance(value.get("label"), str):
                metrics.append(Metric(name, value["label"], str(value.get("type") or "time_series")))
            else:
                raise CatalogueError(f"{channel}.metrics.{name} needs a label")
        names = {m.name for m in metrics}
        roles = {}
        for role in ROLES:
            listed = tuple((spec.get("roles") or {}).get(role) or ())
            if not set(listed) <= names:
                raise CatalogueError(f"{channel}.roles.{role} names a metric the channel does not list")
            roles[role] = listed
        found[channel] = ChannelAnalytics(
            channel=channel, source=spec.get("source"), fetcher=spec.get("fetcher"), note=str(spec.get("note") or ""),
            metrics=tuple(metrics), roles=roles, lookback_days=_int(spec, "lookback_days", channel, 0),
            backfill_days=_int(spec, "backfill_days", channel, 0), window_days=_int(spec, "window_days", channel, 1, 1),
            refresh_days=_int(spec, "refresh_days", channel, 1, 1))
    return found


_cache: Dict[str, Dict[str, ChannelAnalytics]] = {}


def load(path: Optional[str] = None) -> Dict[str, ChannelAnalytics]:
    """The catalogue in `path`, else ANALYTICS_METRICS_FILE, else metrics.json (read once)."""
    path = path or os.environ.get("ANALYTICS_METRICS_FILE") or DEFAULT_FILE
    if path not in _cache:
        with open(path, encoding="utf-8") as handle:
            _cache[path] = parse(json.load(handle))
    return _cache[path]
