"""Issue 18, item 3, in a real browser: a Lab run (the fine-tuning demo) gives way to a chat in another tab, and
its Cancel button stops it. Before, chat in the same server made 11 tokens in 240 s while the demo trained."""

from __future__ import annotations

import pytest

from .browser_support import WATCH_JS, shots

pytestmark = [pytest.mark.model, pytest.mark.browser]


def _ui_first_token_s(page, message: str) -> float:
    """Send ``message``; seconds from Enter to the first streamed text on the page."""
    page.evaluate(WATCH_JS)
    shots.send_message(page, message)
    seen = page.evaluate("window.__pp")
    return (seen["seen"][0]["t"] - seen["sent"]) / 1000


def _lab_text(page) -> str:
    return page.locator("#lab-ft").inner_text()


def test_a_lab_run_gives_way_to_a_chat_and_cancel_stops_it(browser, url, out_dir):
    chat = shots.open_page(browser, url)
    shots.open_accordion(chat, "sampling")
    shots.set_slider(chat, "temperature", 0)
    shots.set_slider(chat, "max-tokens", 24)
    shots.send_message(chat, "Hello! How are you today?")  # the persona's baseline is measured here, once
    idle = _ui_first_token_s(chat, "Name three colours of autumn leaves.")

    lab = shots.open_page(browser, url)  # another tab (or another user) starts the fine-tuning demo
    lab.get_by_role("tab", name="Lab").click()
    shots.open_accordion(lab, "lab-ft")
    lab.get_by_label("Run again (ignore the cache)").check()
    lab.click("#lab-ft-go")
    # past loading the model: torch is generating the training replies on the compute thread
    lab.wait_for_function("document.querySelector('#lab-ft').innerText.includes('training replies')", timeout=180_000)
    lab.click("#lab-ft-ask")  # asking the fine-tuned models meanwhile says why it cannot, in view
    lab.wait_for_selector("[data-testid='toast-body']", timeout=20_000)
    assert "busy" in lab.locator("[data-testid='toast-body']").first.inner_text()
    busy = _ui_first_token_s(chat, "Name three kinds of winter birds.")
    print(f"\nfirst token in the page: idle {idle:.2f} s, while the Lab trains {busy:.2f} s ({busy / idle:.2f}x)")
    assert busy <= 2 * idle + 0.3, (idle, busy)  # issue 18: within 2x its idle time (slack: a shared 2-core box)
    assert "✓" in chat.locator("#status-box").inner_text()

    lab.click("#lab-ft-cancel")
    lab.wait_for_function("document.querySelector('#lab-ft').innerText.includes('Cancelled')", timeout=60_000)
    assert "nothing was kept" in _lab_text(lab)
    lab.screenshot(path=str(out_dir / "screenshot-lab-cancelled.png"), full_page=True)
    # the model is free again: the chat answers at its idle speed
    after = _ui_first_token_s(chat, "Name three animals that live in rivers.")
    assert after <= 2 * idle + 0.3, (idle, after)
    lab.close()
    chat.close()


# Every status line the page shows, in order (the status box is replaced while a reply streams).
STATUS_LOG_JS = """
() => {
  window.__statuses = [];
  const box = document.querySelector('#status-box');
  new MutationObserver(() => {
    const s = box.innerText.trim(), all = window.__statuses;
    if (s && all[all.length - 1] !== s) all.push(s);
  }).observe(box, {subtree: true, childList: true, characterData: true});
}
"""


def test_a_second_tab_says_it_waits_and_a_new_persona_says_it_is_measured(browser, url):
    """Issue 18, item 2: a second tab waited 6 s on a bare "Thinking…", and a new persona's first message showed
    "…" for ~1.6 s while its baseline was measured."""
    first, second = shots.open_page(browser, url), shots.open_page(browser, url)
    shots.open_accordion(first, "sampling")
    shots.set_slider(first, "max-tokens", 256)
    shots.select_persona(second, "Stoic")
    second.evaluate(STATUS_LOG_JS)
    first.fill("#msg textarea", "Write a long story about a dragon who learns to bake bread, with many details.")
    first.press("#msg textarea", "Enter")
    first.wait_for_function("document.querySelector('#status-box').innerText.includes('Writing')", timeout=60_000)
    shots.send_message(second, "What do you make of a rainy morning?")
    statuses = second.evaluate("window.__statuses")
    waiting = [i for i, s in enumerate(statuses) if "Waiting for another chat" in s]
    measuring = [i for i, s in enumerate(statuses) if "Measuring this persona" in s]
    assert waiting and measuring and waiting[0] < measuring[0], statuses
    assert "✓" in statuses[-1], statuses
    second.evaluate(STATUS_LOG_JS)  # the persona is measured now: the next message goes straight to writing
    shots.send_message(second, "And a sunny one?")
    assert not any("Measuring" in s or "Waiting" in s for s in second.evaluate("window.__statuses"))
    first.close()
    second.close()
