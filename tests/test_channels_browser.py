"""The composer on today's channels, in headless Chromium: an X post that neither mentions nor
quotes our account shows `not_summoned` with its reason before the agent writes; a file attached
on Telegram is uploaded (kept in our bucket), sent by sendDocument through the local sandbox and
shown in the thread; and where a file cannot go (a PDF on X, a Facebook comment) the composer says
why before any upload."""
from __future__ import annotations

import base64
import copy
import json
import os

from tests.helpers import fixture_bytes, fixture_json
from tests.test_attachments_channels import BOT_TOKEN, PDF, X_ACCOUNT, send_queued, stored_objects, telegram_dm
from tests.test_web_inbox import XSS, browser, needs_chromium, served  # noqa: F401
from tests.test_workspace_browser import ROWS, _clean, _click_row, _open

pytestmark = needs_chromium


def _screenshot(page, name):
    if os.environ.get("SCREENSHOTS_DIR"):  # make screenshots
        with open(os.path.join(os.environ["SCREENSHOTS_DIR"], name), "wb") as handle:
            handle.write(base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"]))


def attach_and_send(page, name, mime, data, caption):
    """Through the composer as an agent does: pick the file, see its (cleaned) name, send it
    with the draft as its caption; the chip and the draft are cleared once it is stored."""
    page.wait_for("document.getElementById('attach-open').getAttribute('aria-disabled') === 'false'")
    page.page.set_input_files("#attach-input", files=[{"name": name, "mimeType": mime, "buffer": data}])
    page.wait_for("!document.getElementById('attach-chip').hidden")
    assert page.js("document.getElementById('attach-name').textContent").startswith("_img")  # cleaned name
    page.js(f"document.getElementById('draft').value = {json.dumps(caption)}")
    page.js("document.getElementById('attach-send').click()")
    page.wait_for("document.getElementById('attach-chip').hidden && document.getElementById('draft').value === ''")


def _note(page):
    return page.js("document.getElementById('attach-note').textContent")


def test_an_x_post_that_does_not_summon_us_shows_not_summoned_before_writing(inbox, served, browser):
    inbox.add_account("x", X_ACCOUNT)
    reply = copy.deepcopy(fixture_json("x", "activity_reply.json"))
    post = reply["data"]["payload"]
    post.update(in_reply_to_user_id="3333333333333333333", text="@someone_else " + XSS,
                entities={"mentions": [{"start": 0, "end": 13, "username": "someone_else", "id": "3333333333333333333"}]})
    post.pop("note_tweet", None)
    assert inbox.post_x(json.dumps(reply).encode()).status_code == 200
    inbox.process()
    page = browser
    _open(inbox, served, page)
    _click_row(page, "OtherUser")
    page.wait_for("document.getElementById('window').textContent.includes('not_summoned')")
    note = page.js("document.getElementById('window').textContent")
    assert note.startswith("No reply possible now: X accepts a reply only to a post that mentions or quotes")
    assert "direct message" in note and "Notes still work" in note
    # a PDF is not attached on X: said before any upload (X takes images only)
    page.page.set_input_files("#attach-input", files=[{"name": "menu.pdf", "mimeType": "application/pdf",
                                                       "buffer": PDF}])
    page.wait_for("document.getElementById('attach-note').textContent.includes('takes only images')")
    assert stored_objects() == []
    _screenshot(page, "x-not-summoned.png")
    _clean(page)


def test_a_file_is_attached_and_sent_on_telegram_and_refused_before_upload_on_a_comment(
        inbox, served, browser, monkeypatch):
    from chalicelib.local import sandbox

    platform, env = sandbox.start(None, secrets={"TELEGRAM_BOT_TOKEN": BOT_TOKEN}.get)
    try:
        for name, value in dict(env, TELEGRAM_BOT_TOKEN=BOT_TOKEN).items():
            monkeypatch.setenv(name, value)
        conversation_id = telegram_dm(inbox)
        page = browser
        _open(inbox, served, page)
        _click_row(page, "the menu?")
        attach_and_send(page, XSS + ".pdf", "application/pdf", PDF, "Our menu")
        assert "JPEG, PNG or PDF" in page.js("document.getElementById('attach-open').title")
        assert send_queued() == "sent"
        [sent_file] = [r for r in platform.requests if r["path"].endswith("/sendDocument")]
        assert sent_file["body"]["caption"] == "Our menu" and sent_file["body"]["document"].startswith("https://")
        sent = inbox.messages(conversation_id)[-1]
        assert sent["delivery_status"] == "sent" and sent["type"] == "document"
        page.wait_for("document.querySelectorAll('#messages .attachments li').length === 1")
        _screenshot(page, "telegram-attachment.png")
        # a Facebook comment thread: pressing "Attach file" says why, and nothing is uploaded
        inbox.add_account("facebook", "104000000000099", "Page")
        assert inbox.post_meta(fixture_bytes("meta", "facebook_comment_add.json")).status_code == 200
        inbox.process()
        stored = stored_objects()
        _click_row(page, "gluten-free")
        page.wait_for("document.getElementById('attach-open').getAttribute('aria-disabled') === 'true'")
        page.js("document.getElementById('attach-open').click()")
        page.wait_for("document.getElementById('attach-note').textContent.includes('cannot carry')")
        assert _note(page) == ("Not attached: Facebook replies cannot carry files "
                               "(files go out on: WhatsApp, Messenger, Instagram, Telegram, X).")
        assert stored_objects() == stored
        assert BOT_TOKEN not in page.js("document.body.innerHTML")
        _clean(page)
    finally:
        platform.close()


def test_the_list_thread_and_contact_panel_show_the_customers_picture_and_followers(inbox, served, browser):
    import responses

    from tests.test_contact_profiles import X_PICTURE, _x_dm

    conversation_id = _x_dm(inbox)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        platform.get(X_PICTURE, body=bytes.fromhex(
            "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154"
            "789c6360f8cfc0f01f0005000201a5f3c3a60000000049454e44ae426082"), content_type="image/png")
        page = browser
        _open(inbox, served, page)
        _click_row(page, "OtherUser")
        page.wait_for("document.querySelectorAll('.av img').length >= 2")  # the list row and the thread head
        sources = page.js("[...document.querySelectorAll('.av img')].map(i => i.src)")
        assert all(src.startswith("blob:") for src in sources)  # from our origin, never twimg.com
        row = page.js(f"[...{ROWS}].find(r => r.textContent.includes('OtherUser')).querySelector('.followers')")
        assert row is not None
        assert page.js(f"[...{ROWS}].find(r => r.textContent.includes('OtherUser'))"
                       ".querySelector('.followers').title") == "97 followers"  # the list row, from the list's own read
        page.wait_for("document.querySelector('#thread-head .followers').textContent === '97 followers'")
        assert "@OtherUser" in page.js("document.getElementById('thread-head').textContent")
        page.wait_for("document.getElementById('identities').textContent.includes('97 followers')")
        assert [c.request.url for c in platform.calls] == [X_PICTURE]  # asked once for both places
        assert conversation_id in " ".join(path for _, path in served.requests if "picture" in path)
        _clean(page)


def test_a_linkedin_member_without_a_permitted_name_is_linkedin_member_in_list_thread_and_panel(inbox, served, browser):
    """LinkedIn gives a member's name only where the organization may see it: otherwise the page
    says "LinkedIn member" everywhere and never shows the member's URN."""
    from tests.test_names_browser import _record

    _record("linkedin", "urn:li:person:zLqTygBP8S", "Great post!", "comment", "urn:li:activity:7100000000000000002")
    page = browser
    _open(inbox, served, page)
    _click_row(page, "LinkedIn member")
    page.wait_for("document.getElementById('identities').textContent.includes('LinkedIn member')")
    shown = {part: page.js(f"document.querySelector({part!r}).innerText")
             for part in ("#conversations", "#thread-head", "#contact")}
    assert all("LinkedIn member" in text for text in shown.values()), shown
    assert page.js("document.getElementById('contact-name').textContent") == "LinkedIn member"
    assert "urn:" not in page.js("document.body.innerText")
    _clean(page)


def test_the_contact_panels_history_follows_a_new_message_in_the_open_conversation(inbox, served, browser):
    """The panel lists the person's conversations with their latest message: a message arriving in
    the open conversation shows there too, not only in the thread and the list."""
    import time

    from tests.test_web_inbox import PAGE_ID, _deliver, _messaging

    inbox.add_account("messenger", PAGE_ID)
    now = int(time.time() * 1000)
    _deliver(inbox, _messaging("7100", now - 60_000, "m_panel_1", "Where is my parcel?"))
    page = browser
    _open(inbox, served, page)
    _click_row(page, "Where is my parcel?")
    page.wait_for("document.getElementById('contact').textContent.includes('Where is my parcel?')")
    _deliver(inbox, _messaging("7100", now, "m_panel_2", "Found it, thanks"))
    page.wait_for("document.getElementById('thread').textContent.includes('Found it, thanks')")
    page.wait_for("document.getElementById('contact').textContent.includes('Found it, thanks')")
    _clean(page)
