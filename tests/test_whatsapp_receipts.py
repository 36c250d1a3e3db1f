"""A WhatsApp status that overtakes our send's answer still finds our reply: the adapter hands
the outbound id WhatsApp echoes (`biz_opaque_callback_data`) to the store. Parsing only, no AWS."""
from __future__ import annotations

from chalicelib.channels.base import StatusEvent
from tests.helpers import parse_all

PHONE = "106540352242922"


def _status_delivery(callback=None):
    status = {"id": "wamid.OUT1", "status": "delivered", "timestamp": "1739321100", "recipient_id": "351910000001"}
    if callback is not None:
        status["biz_opaque_callback_data"] = callback
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE},
        "statuses": [status]}}]}]}


def test_the_echoed_outbound_id_rides_on_the_status_event():
    [event] = parse_all("meta", _status_delivery("c_0123|0001739321070000#m_abc"))
    assert isinstance(event, StatusEvent)
    assert event.outbound_id == "c_0123|0001739321070000#m_abc" and event.status == "delivered"


def test_a_status_without_callback_data_has_no_outbound_id_and_odd_values_are_ignored():
    [plain] = parse_all("meta", _status_delivery())
    assert plain.outbound_id is None
    [odd] = parse_all("meta", _status_delivery({"nested": "object"}))
    assert odd.outbound_id is None
