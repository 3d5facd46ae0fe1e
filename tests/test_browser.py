"""The UI in a real browser: Debian chromium (/usr/bin/chromium) driven by Playwright; no browser download.

Opens the page, sends a message, watches the reply stream in with the probe panel beside it, edits a persona
with an error and sees the located error, and checks that a bad persona file or a malformed upload is shown
as an error while the chat goes on. Screenshots go to the test's temp folder, or to docs/ with
UPDATE_SCREENSHOTS=1 (the README's screenshots come from scripts/screenshot.py).
"""

from __future__ import annotations

import re

import pytest

from playground.ui.persona_lists import REFRESH_SECONDS

from .browser_support import WATCH_JS, shots, upload

pytestmark = [pytest.mark.model, pytest.mark.browser]


def _first_token_ratio(page, seen: dict, status: str, what: str) -> float:
    """Time from Enter to the first streamed text in the page, against the backend's own first-token time."""
    backend_first = float(re.search(r"first token ([\d.]+) s", status).group(1))
    ui_first = (seen["seen"][0]["t"] - seen["sent"]) / 1000
    ratio = ui_first / backend_first
    print(f"\nfirst token, {what}: UI {ui_first:.3f} s, backend {backend_first:.3f} s, ratio {ratio:.2f}")
    assert ui_first <= 1.5 * backend_first + 0.3  # slack: browser, server and model share two busy cores here
    return ratio


# Whether the persona map showed the reply being written (a hollow 'live' point) at any moment.
MAP_WATCH_JS = """
() => {
  window.__ppLive = false;
  new MutationObserver(() => {
    if (document.querySelector('#probe-trend circle.mark.live')) window.__ppLive = true;
  }).observe(document.querySelector('#probe-trend'), {subtree: true, childList: true});
}
"""


def test_chat_streams_with_probe_panel_and_guard_log(browser, url, out_dir, real_backend):
    page = shots.open_page(browser, url)
    shots.open_accordion(page, "sampling")
    shots.set_slider(page, "temperature", 0)
    shots.set_slider(page, "max-tokens", 48)
    page.evaluate(WATCH_JS)
    shots.send_message(page, "Tell me about the moon in three sentences.")
    seen = page.evaluate("window.__pp")
    texts = [s["text"] for s in seen["seen"]]
    assert len(texts) >= 3, texts  # the reply arrived in pieces: it streamed
    assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:], strict=False))
    status = page.locator("#status-box").inner_text()
    assert "✓ 48 tokens" in status or "✓" in status, status

    # the probe panel: one bar per trait, thresholds of the policy, a heatmap with a hover value per token
    n_traits = page.locator("#probe-bars .pp-row").count()
    assert n_traits >= 7
    assert page.locator("#probe-bars .pp-thr.act").count() >= 3
    tokens = page.locator("#probe-heatmap span.t")
    assert tokens.count() >= 10
    assert re.search(r"token 0: .* [+-]\d+\.\d\d z", tokens.first.get_attribute("title"))
    assert page.locator("#probe-trend circle").count() >= n_traits
    # the persona map under the trend: the characters, the persona ringed, this reply as point 1
    assert page.locator("#probe-trend .pp-map circle.char").count() >= 50
    assert page.locator("#probe-trend .pp-map circle.sel").count() == 1
    assert page.locator("#probe-trend .pp-map circle.mark").count() == 1

    _first_token_ratio(page, seen, status, "first message (includes measuring the persona's baseline)")

    # steering + a guardrail: the inline alert and the session log
    shots.set_slider(page, "steer-evil", 2)
    page.evaluate(WATCH_JS)
    page.evaluate(MAP_WATCH_JS)
    shots.send_message(page, "What should I do about my annoying neighbour?")
    assert page.evaluate("window.__ppLive"), "the reply being written was not shown moving on the map"
    assert page.locator("#probe-trend .pp-map circle.mark").count() == 2  # two replies, joined in order
    assert page.locator("#probe-trend .pp-map .trail").count() == 1
    assert "Reply 2 is nearest to" in page.locator("#probe-trend .pp-map-caption").inner_text()
    _first_token_ratio(page, page.evaluate("window.__pp"), page.locator("#status-box").inner_text(), "next message")
    page.locator("#guard-alerts .pp-alert").first.wait_for(timeout=10_000)
    assert "evil" in page.locator("#guard-alerts").inner_text()
    assert "steering evil +2" in page.locator("#status-box").inner_text()
    shots.top(page)
    page.screenshot(path=str(out_dir / "screenshot-chat.png"))
    shots.open_accordion(page, "guard-accordion")
    assert page.locator("#guard-log tr").count() >= 2
    assert "persona_drift" in page.locator("#policy").inner_text()

    # undo takes back the last exchange; the trend loses a point per trait
    page.click("#undo")
    page.wait_for_function("document.querySelectorAll('#chat .user-row').length === 1", timeout=10_000)
    page.close()


def test_bad_files_and_uploads_show_errors_and_nothing_is_lost(browser, url, out_dir, tmp_path, user_dir):
    page = shots.open_page(browser, url)
    shots.open_accordion(page, "sampling")
    shots.set_slider(page, "max-tokens", 16)
    shots.send_message(page, "Hi!")
    chat_before = page.locator("#chat").inner_text()

    # a bad persona file on disk: listed as invalid, selecting it shows the problem, the chat stays
    page.click("#persona-select input")
    page.click("li.item:has-text('broken (invalid)')")
    page.wait_for_function("document.querySelector('#status-box').innerText.includes(\"can't be used\")")
    assert "unknown role model" in page.locator("#status-box").inner_text()
    assert page.locator("#chat").inner_text() == chat_before

    # a malformed chat upload: an error, the chat is unchanged
    junk = tmp_path / "chat.json"
    junk.write_text("{not json", encoding="utf-8")
    upload(page, "#import", junk)
    page.wait_for_function("document.querySelector('#status-box').innerText.includes('Could not import')")
    assert page.locator("#chat").inner_text() == chat_before

    # an invalid edit: the located error appears; saving refuses and writes nothing
    page.click("button[role=tab]:has-text('Persona editor')")
    shots.pick(page, "ed-file", "Captain Rook")
    page.wait_for_function("document.querySelector('#ed-issues').innerText.includes('Valid')")
    shots.edit_line(page, "steering:", "steering: {humorous: 5}")
    page.wait_for_function("document.querySelector('#ed-issues').innerText.includes('Line')", timeout=15_000)
    issues = page.locator("#ed-issues").inner_text()
    assert re.search(r"Line \d+, column \d+: 'steering.humorous' is 5; it must be at most 2", issues), issues
    shots.top(page)
    page.screenshot(path=str(out_dir / "screenshot-editor.png"))
    page.click("#ed-save")
    page.wait_for_function("document.querySelector('#ed-status').innerText.includes('Not saved')")
    assert not (user_dir / "pirate.yaml").exists()

    # a malformed card upload into the editor: an error, the editor keeps the text
    card = tmp_path / "card.png"
    card.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    upload(page, "#ed-upload", card)
    page.wait_for_function("document.querySelector('#ed-status').innerText.includes('Could not open')")
    assert "humorous: 5" in page.locator("#persona-code").inner_text()

    # fixed, saved (into the user's folder), and usable in the chat
    shots.edit_line(page, "steering:", "steering: {humorous: 0.5}")
    page.wait_for_function("document.querySelector('#ed-issues').innerText.includes('Valid')", timeout=15_000)
    page.click("#ed-save")
    page.wait_for_function("document.querySelector('#ed-status').innerText.includes('Saved')")
    assert "humorous: 0.5" in (user_dir / "pirate.yaml").read_text(encoding="utf-8")
    page.wait_for_timeout(1500)  # issue 18: the file picker's handler used to overwrite "✓ Saved" at once
    assert "Saved" in page.locator("#ed-status").inner_text()

    # the designer's fingerprint: measured after the save; the next save shows what the edit changed
    fingerprint = "document.querySelector('#ed-fingerprint').innerText"
    page.wait_for_function(f"{fingerprint}.includes('First measurement')", timeout=120_000)
    assert page.locator("#ed-fingerprint tr").count() >= 8  # a header and one row per probe
    shots.edit_line(page, "steering:", "steering: {humorous: 1.5}")
    page.wait_for_function("document.querySelector('#ed-issues').innerText.includes('Valid')", timeout=15_000)
    page.click("#ed-save")
    page.wait_for_function(f"{fingerprint}.includes('save before')", timeout=120_000)
    row = page.locator("#ed-fingerprint tr", has_text="humorous").inner_text().split()
    before, now = float(row[1]), float(row[2])
    assert now > before, row  # three times the humorous steering reads as more humorous
    assert page.locator("#ed-fingerprint circle.mark").count() == 2  # both versions on the map

    # "Try in chat" switches to the chat with the editor's version of the persona
    page.click("#ed-try")
    page.wait_for_function("document.querySelector('#persona-info').innerText.includes('Captain Rook')")
    assert page.locator("#steer-humorous input[type=number]").input_value() == "1.5"
    assert "Captain Rook" in page.locator("#persona-select input").input_value()  # the picker agrees
    assert page.locator("#chat").is_visible()
    page.close()


KEEPER = """name: Wren the Lighthouse Keeper
description: A weathered keeper of a lonely light.
system_prompt: You are Wren, who has kept a lighthouse for forty winters. You speak plainly and kindly.
greeting: "Mind the steps. Tea?"
"""


def _lists(page, elem_id: str, label: str, timeout_s: float = 20.0) -> bool:
    """Whether the dropdown ``elem_id`` offers ``label``, waiting up to ``timeout_s`` for the page to refresh it."""
    waited = 0.0
    while True:
        page.click(f"#{elem_id} input")
        found = page.locator(f"li.item:has-text({label!r})").count() > 0
        page.keyboard.press("Tab")  # close the list without choosing
        if found or waited >= timeout_s:
            return found
        page.wait_for_timeout(1000)
        waited += 1.0


def test_a_persona_saved_elsewhere_appears_in_every_open_tab_and_every_new_page(browser, url, user_dir):
    """Issue 18: personas saved in the editor (of this tab, another tab or another user) were missing from new
    pages and from Compare until the server restarted. The pickers are refreshed on load and on a timer."""
    open_before = shots.open_page(browser, url)
    assert not _lists(open_before, "persona-select", "Wren the Lighthouse Keeper", timeout_s=0)
    (user_dir / "lighthouse_keeper.yaml").write_text(KEEPER, encoding="utf-8")  # what a save anywhere leaves
    try:
        fresh = shots.open_page(browser, url)
        for page in (open_before, fresh):
            assert _lists(page, "persona-select", "Wren the Lighthouse Keeper")
            page.click("button[role=tab]:has-text('Compare')")
            assert _lists(page, "cmp-a-persona", "Wren the Lighthouse Keeper")
            assert _lists(page, "cmp-b-persona", "Wren the Lighthouse Keeper")
            page.click("button[role=tab]:has-text('Persona editor')")
            assert _lists(page, "ed-file", "Wren the Lighthouse Keeper")
        fresh.close()
        # and gone again once the file is deleted
        (user_dir / "lighthouse_keeper.yaml").unlink()
        open_before.click("button[role=tab]:has-text('Chat')")
        open_before.wait_for_timeout(int(REFRESH_SECONDS * 1000) + 1500)
        assert not _lists(open_before, "persona-select", "Wren the Lighthouse Keeper", timeout_s=0)
    finally:
        (user_dir / "lighthouse_keeper.yaml").unlink(missing_ok=True)
        open_before.close()


def test_an_error_shows_in_view_and_as_a_toast_and_the_message_is_kept(browser, url):
    """Issue 18: a 20,000-character message "did nothing" at 1440x1000: the limit error was below the fold."""
    page = shots.open_page(browser, url)
    long_message = "word " * 2000  # 10,000 characters, over the 8,000 limit
    page.fill("#msg textarea", long_message)
    shown = "document.querySelector('#status-box').innerText.includes('the limit is 8,000')"
    for _ in range(3):  # a 10,000-character fill can reach the server after the first Enter; press again then
        page.press("#msg textarea", "Enter")
        try:
            page.wait_for_function(shown, timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; the final wait below reports it
            continue
    page.wait_for_function(shown, timeout=1_000)
    box = page.locator("#status-box").bounding_box()
    assert box is not None and box["y"] + box["height"] <= shots.VIEWPORT["height"], box
    page.wait_for_selector("[data-testid='toast-body']", timeout=10_000)
    assert "limit is 8,000" in page.locator("[data-testid='toast-body']").first.inner_text()
    assert page.locator("#msg textarea").input_value().strip() == long_message.strip()
    page.close()


def test_theme_and_large_type_are_remembered_after_a_reload(browser, url):
    """Issue 18: a speaker set dark theme and large type, reloaded, and both were gone."""
    page = browser.new_page(viewport=shots.VIEWPORT, color_scheme="light")
    page.goto(url)
    page.wait_for_selector("#msg textarea", timeout=60_000)
    classes = "document.body.className"
    assert "dark" not in page.evaluate(classes) and "pp-large" not in page.evaluate(classes)
    page.click("#theme-toggle")
    page.click("#large-type input")
    page.wait_for_function("document.body.classList.contains('dark') && document.body.classList.contains('pp-large')")
    page.reload()
    page.wait_for_selector("#msg textarea", timeout=60_000)
    page.wait_for_function(
        "document.body.classList.contains('dark') && document.body.classList.contains('pp-large')", timeout=15_000
    )
    assert page.locator("#large-type input").is_checked()
    page.goto(url + "?__theme=light")  # an explicit theme in the URL wins over the remembered one
    page.wait_for_selector("#msg textarea", timeout=60_000)
    page.wait_for_function("document.body.classList.contains('pp-large')", timeout=15_000)
    assert "dark" not in page.evaluate(classes)
    page.close()
