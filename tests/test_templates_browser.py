"""The composer's WhatsApp template picker (static/templates.js) in headless Chromium, against the
local sandbox's templates: offered first on a closed window, placeholders filled with hostile text
that stays text, the preview, and the send landing in the thread as the customer reads it; and a
file attached (static/attach.js), uploaded and sent with the draft as caption (refusals before
upload: tests/test_channels_browser.py)."""
from __future__ import annotations

import base64
import json
import os
import time

from tests.helpers import PHONE, whatsapp_delivery
from tests.test_web_inbox import XSS, browser, needs_chromium, served  # noqa: F401
from tests.test_workspace_browser import _clean, _click_row, _open

pytestmark = needs_chromium


def test_a_closed_whatsapp_window_offers_templates_filled_previewed_and_sent(inbox, served, browser, monkeypatch):
    from chalicelib.local import sandbox

    platform, env = sandbox.start(None, secrets={"WHATSAPP_TOKEN": "wa-browser-token"}.get)
    try:
        for name, value in dict(env, WHATSAPP_TOKEN="wa-browser-token",
                                WHATSAPP_BUSINESS_ACCOUNT_ID=sandbox.WABA_ID).items():
            monkeypatch.setenv(name, value)
        inbox.add_account("whatsapp", PHONE, "Demo number")
        inbox.post_meta(whatsapp_delivery("wamid.B1", "447700900009", int(time.time()) - 2 * 86400, "ol\u00e1",
                                          name="Zo\u00eb"))
        inbox.process()
        page = browser
        _open(inbox, served, page)
        _click_row(page, "Zo\u00eb")
        page.wait_for("!document.getElementById('templates').hidden"
                      " && document.getElementById('tpl-pick').options.length > 1")
        labels = page.js("[...document.getElementById('tpl-pick').options].map(o => o.textContent)")
        assert any(label.startswith("order_update \u00b7 en_US") for label in labels)
        assert not any("spring_sale" in label for label in labels)  # paused: not offered
        page.js("const s = document.getElementById('tpl-pick');"
                "s.value = [...s.options].find(o => o.textContent.startsWith('order_update')).value;"
                "s.dispatchEvent(new Event('change'))")
        assert page.js("document.querySelectorAll('#tpl-fields input').length") == 4  # 1 header + 3 body
        assert page.js("document.getElementById('tpl-send').disabled") is False
        page.js("const inputs = document.querySelectorAll('#tpl-fields input');"
                f"[{json.dumps(XSS)}, 'Zo\u00eb', 'A-7', 'Friday'].forEach((v, i) => {{"
                " inputs[i].value = v; inputs[i].dispatchEvent(new Event('input')); })")
        preview = page.js("document.getElementById('tpl-preview').textContent")
        assert preview.startswith("Order " + XSS) and "Hi Zo\u00eb, your order A-7" in preview
        if os.environ.get("SCREENSHOTS_DIR"):  # make screenshots
            with open(os.path.join(os.environ["SCREENSHOTS_DIR"], "whatsapp-template.png"), "wb") as handle:
                handle.write(base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"]))
        page.js("document.getElementById('tpl-send').click()")
        page.wait_for("document.getElementById('templates').hidden")
        page.wait_for("[...document.querySelectorAll('#messages li')].some(li => li.textContent.includes('A-7'))")
        assert page.js("document.querySelectorAll('#messages img, #templates img').length") == 0
        [conversation] = inbox.conversations(channel="whatsapp")
        sent = inbox.messages(conversation["id"])[-1]
        assert sent["direction"] == "out" and sent["text"].startswith("Order " + XSS)
        _clean(page)
    finally:
        platform.close()


def test_a_file_is_attached_uploaded_and_sent_with_the_draft_as_caption(inbox, served, browser, monkeypatch):
    from chalicelib.local import sandbox
    from tests.test_channels_browser import attach_and_send
    from tests.test_attachments_out import PNG

    platform, env = sandbox.start(None, secrets={"WHATSAPP_TOKEN": "wa-browser-token"}.get)
    try:
        for name, value in dict(env, WHATSAPP_TOKEN="wa-browser-token").items():
            monkeypatch.setenv(name, value)
        inbox.add_account("whatsapp", PHONE, "Demo number")
        inbox.post_meta(whatsapp_delivery("wamid.B2", "447700900010", int(time.time()) - 60, "the receipt?",
                                          name="Ana"))
        inbox.process()
        page = browser
        _open(inbox, served, page)
        _click_row(page, "Ana")
        attach_and_send(page, XSS + ".png", "image/png", PNG, "Here you go")
        [conversation] = inbox.conversations(channel="whatsapp")
        sent = inbox.messages(conversation["id"])[-1]
        assert sent["direction"] == "out" and sent["text"] == "Here you go" and sent["type"] == "image"
        assert sent["attachments"][0]["media_id"] in platform.media
        page.wait_for("document.querySelectorAll('#messages .attachments li').length === 1")
        _clean(page)
    finally:
        platform.close()
