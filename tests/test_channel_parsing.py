"""Every channel's parsing table (tests/channel_cases.py) through the adapter's `parse`: no AWS."""
from __future__ import annotations

import pytest

from tests.channel_cases import TABLES, mismatches
from tests.helpers import parse_all

CASES = [pytest.param(case, id=f"{channel}: {case.id}") for channel, cases in TABLES.items() for case in cases]


@pytest.mark.parametrize("case", CASES)
def test_parse_yields_the_expected_events(case):
    events = parse_all(case.adapter, case.payload(), case.context)
    assert mismatches(events, case.expected) == []


def test_every_channel_has_a_table():
    from chalicelib.channels import adapter_names

    assert sorted(TABLES) == adapter_names()
    assert all(TABLES.values())
