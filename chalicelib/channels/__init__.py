"""Registry of platform adapters, keyed by their webhook URL segment.

Adding a platform = one adapter module + one line here. Adapters are imported lazily so a
webhook invocation only loads the one it needs.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

from chalicelib.channels.base import ChannelAdapter

ADAPTERS: Dict[str, str] = {
    "meta": "chalicelib.channels.meta:MetaAdapter",
    "x": "chalicelib.channels.x:XAdapter",
    "telegram": "chalicelib.channels.telegram:TelegramAdapter",
    "linkedin": "chalicelib.channels.linkedin:LinkedInAdapter",
}

_loaded: Dict[str, ChannelAdapter] = {}


def adapter_names() -> List[str]:
    return sorted(ADAPTERS)


def get_adapter(name: str) -> ChannelAdapter:
    """The adapter for /webhooks/<name>; KeyError for an unknown platform."""
    if name not in _loaded:
        module_name, class_name = ADAPTERS[name].split(":")
        module = importlib.import_module(module_name)
        _loaded[name] = getattr(module, class_name)()
    return _loaded[name]


_by_channel: Dict[str, str] = {}


def adapter_for_channel(channel: str) -> ChannelAdapter:
    """The adapter that serves `channel` (messenger, instagram, whatsapp and facebook are Meta's),
    found through each adapter's `channels`; KeyError for a channel no adapter declares. Loads
    adapters only until the one serving the channel is found."""
    if channel not in _by_channel:
        for name in adapter_names():
            adapter = get_adapter(name)
            for served in adapter.channels:
                _by_channel.setdefault(served, name)
            if channel in _by_channel:
                break
    if channel not in _by_channel:
        raise KeyError(channel)
    return get_adapter(_by_channel[channel])


def channel_names() -> List[str]:
    """Every channel some adapter serves (loads every adapter)."""
    return sorted({channel for name in adapter_names() for channel in get_adapter(name).channels})
