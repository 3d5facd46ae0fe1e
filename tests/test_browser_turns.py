"""Issue 18, item 5 (and item 2's "message typed while a reply streams") in a real browser: a reply cut at the token
limit is marked and ▸ Continue writes on in the same reply; regenerating keeps the earlier replies, ← → browse
them (the panels follow, the export keeps them all and names the one shown); the pencil on a message edits it; the
context meter grows; a message sent while a reply streams is queued and sent after it (Stop puts it back in the
box). Greedy decoding or fixed seeds; timeouts are generous (two busy cores)."""

from __future__ import annotations

import json
import re

import pytest

from .browser_support import shots

pytestmark = [pytest.mark.model, pytest.mark.browser]

# The text of the last reply in the chat (a guardrail note, a titled message shown with it, cut off).
LAST_REPLY_JS = """() => {
  const rows = document.querySelectorAll('#chat .bot-row');
  const text = rows.length ? rows[rows.length - 1].innerText.trim() : '';
  return text.split(/\\n+[⚑⚠] Guardrail/)[0].trim();
}"""
DONE_JS = """() => { const s = document.querySelector('#status-box')?.innerText || '';
  return (s.includes('✓') || s.includes('✗') || s.includes('■')) && !s.includes('Writing'); }"""


def _reply(page) -> str:
    return page.evaluate(LAST_REPLY_JS)


def _plain(reply: str) -> str:
    """A reply's text without the mark of a cut at the token limit."""
    return re.sub(r"\s*… ⟨cut at \d+ tokens⟩$", "", reply).strip()


def _meter(page) -> int:
    page.wait_for_selector("#context-meter .pp-meter-used", timeout=30_000)
    return int(page.locator("#context-meter .pp-meter-used").inner_text().replace(",", ""))


def _settle(page, condition: str, timeout_ms: int = 120_000) -> None:
    """Wait for ``condition`` (a JS expression) and a finished reply; then for the chained updates to land."""
    page.wait_for_function(f"() => ({condition}) && ({DONE_JS})()", timeout=timeout_ms)
    page.wait_for_timeout(800)


def _sampling(page, temperature: float, max_tokens: int, seed: int | None = None) -> None:
    shots.open_accordion(page, "sampling")
    shots.set_slider(page, "temperature", temperature)
    shots.set_slider(page, "max-tokens", max_tokens)
    if seed is not None:
        _seed(page, seed)


def _seed(page, seed: int) -> None:
    box = page.locator("#seed input")
    box.fill(str(seed))
    box.press("Tab")
    page.wait_for_timeout(200)


def test_a_cut_reply_is_marked_and_continue_writes_on_in_the_same_reply(browser, url):
    page = shots.open_page(browser, url)
    _sampling(page, 0, 8)
    shots.send_message(page, "Tell me about the moon in three sentences.")
    cut = _reply(page)
    assert "cut at 8 tokens" in cut, cut
    assert page.locator("#continue").is_visible()
    first_part = cut.split("…")[0].strip()
    used = _meter(page)
    bots = page.locator("#chat .bot-row").count()
    assert page.locator("#probe-heatmap span.t").count() == 8

    page.click("#continue")
    _settle(page, f"!({LAST_REPLY_JS})().includes('cut at 8 tokens')")
    longer = _reply(page)
    assert longer.startswith(first_part) and len(longer.split("…")[0].strip()) > len(first_part), longer
    assert page.locator("#chat .bot-row").count() == bots  # the same reply, not a new one
    assert page.locator("#probe-heatmap span.t").count() > 8  # readouts of the new tokens were added
    assert _meter(page) > used
    page.close()


def test_regenerate_keeps_alternatives_that_arrows_browse_and_the_export_keeps(browser, url, out_dir):
    page = shots.open_page(browser, url)
    _sampling(page, 0.8, 16, seed=1)
    shots.send_message(page, "Give me a name for a cat.")
    texts = [_plain(_reply(page))]
    assert not page.locator("#swipe-prev").is_visible()  # one reply: nothing to browse
    for seed in (2, 3):
        _seed(page, seed)
        page.click("#regen")
        _settle(page, f"document.querySelector('#swipe-count')?.innerText.includes('{seed}/{seed}')")
        texts.append(_plain(_reply(page)))
    assert len(set(texts)) > 1, texts
    assert page.locator("#chat .user-row").count() == 1

    page.click("#swipe-prev")
    page.wait_for_function("document.querySelector('#swipe-count').innerText.includes('2/3')", timeout=30_000)
    page.click("#swipe-prev")
    page.wait_for_function("document.querySelector('#swipe-count').innerText.includes('1/3')", timeout=30_000)
    page.wait_for_timeout(500)
    assert _plain(_reply(page)) == texts[0]
    heat = "".join(page.locator("#probe-heatmap span.t").all_inner_texts())
    assert re.sub(r"\s", "", heat) == re.sub(r"\s", "", texts[0])  # the panels show the reply shown
    assert "Reply 1 of 3" in page.locator("#status-box").inner_text()
    assert page.locator("#swipe-next").is_enabled() and not page.locator("#swipe-prev").is_enabled()
    shots.top(page)
    page.screenshot(path=str(out_dir / "screenshot-swipes.png"))

    # the next turn follows the reply shown; the export keeps every alternative and names the one shown
    _sampling(page, 0, 8)
    shots.send_message(page, "Why that name?")
    assert not page.locator("#swipe-prev").is_visible()  # the arrows belong to the last message
    page.click("#export")
    link = page.locator("#export-file a").first
    link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    data = json.loads(open(download.value.path(), encoding="utf-8").read())
    first = data["turns"][0]
    assert first["assistant"].strip() == texts[0] and first["shown"] == 0
    assert [s["assistant"].strip() for s in first["swipes"]] == texts
    page.close()


def test_editing_a_message_replaces_it_and_drops_the_exchanges_after_it(browser, url):
    page = shots.open_page(browser, url)
    _sampling(page, 0, 8)
    shots.send_message(page, "Hello!")
    shots.send_message(page, "What is two plus two?")
    used = _meter(page)
    page.locator("#chat .user-row").first.hover()
    page.locator("#chat button[aria-label='Edit']").first.click()
    page.locator("#chat textarea").first.fill("What is the capital of France?")
    page.locator("#chat button[aria-label='Submit']").first.click()
    _settle(page, "document.querySelectorAll('#chat .user-row').length === 1")
    users = page.locator("#chat .user-row").all_inner_texts()
    assert [u.strip() for u in users] == ["What is the capital of France?"]
    assert "Paris" in _reply(page)
    assert "dropped" in page.locator("[data-testid='toast-body']").first.inner_text()
    assert _meter(page) < used  # one exchange fewer
    page.close()


def test_a_message_sent_while_a_reply_streams_is_sent_after_it(browser, url):
    page = shots.open_page(browser, url)
    _sampling(page, 0, 96)
    page.fill("#msg textarea", "Tell me a long story about the sea.")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(
        "document.querySelector('#status-box').innerText.includes('Writing')", timeout=60_000, polling=50
    )
    page.fill("#msg textarea", "Now say it in one sentence.")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(
        "document.querySelector('#chat').innerText.includes('will send when this reply ends')", timeout=30_000
    )
    assert page.locator("#msg textarea").input_value() == ""  # taken: kept by the chat, not the box
    _settle(
        page,
        "document.querySelectorAll('#chat .user-row').length === 2"
        " && !document.querySelector('#chat').innerText.includes('will send')"
        " && document.querySelectorAll('#chat .bot-row').length >= 3",
        timeout_ms=240_000,
    )
    users = [u.strip() for u in page.locator("#chat .user-row").all_inner_texts()]
    assert users == ["Tell me a long story about the sea.", "Now say it in one sentence."]
    replies = [r.strip() for r in page.locator("#chat .bot-row").all_inner_texts()]
    assert all(r and r != "…" for r in replies) and not any(r.endswith("■") for r in replies), replies

    # Stop while one is queued: the reply stops and the queued message is back in the box, not sent. The reply
    # may take 512 tokens (about 400 come greedily, several seconds), so it is still written when Stop comes even
    # on a slow machine (with 96 it could end between the queued mark and the click, and send the kept message)
    _sampling(page, 0, 512)
    page.fill("#msg textarea", "Tell me another long story, about the mountains.")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(
        "document.querySelector('#status-box').innerText.includes('Writing')", timeout=60_000, polling=50
    )
    page.fill("#msg textarea", "Keep me.")
    page.press("#msg textarea", "Enter")
    page.wait_for_function("document.querySelector('#chat').innerText.includes('will send')", timeout=30_000)
    page.click("#stop")
    page.wait_for_function("document.querySelector('#msg textarea').value === 'Keep me.'", timeout=30_000)
    _settle(page, "!document.querySelector('#chat').innerText.includes('will send')")
    page.wait_for_timeout(1500)
    assert page.locator("#chat .user-row").count() == 3
    assert page.locator("#msg textarea").input_value() == "Keep me."
    page.close()


def test_an_api_client_sending_while_a_reply_streams_gets_both_replies(url, playground):
    """The kept message is sent by the server after the reply (not only by the page's chained event)."""
    import time

    from gradio_client import Client

    client = Client(url, verbose=False)
    traits = playground.vectors.names()

    def args(message: str, max_tokens: int) -> list:
        return [message, traits[0], 0, max_tokens, -1, *[0.0] * len(traits)]

    first = client.submit(*args("Tell me a long story about the sea.", 96), api_name="/send")
    deadline = time.monotonic() + 60
    while not first.outputs() and time.monotonic() < deadline:  # until the reply is being written
        time.sleep(0.05)
    queued = client.predict(*args("Now say it in one sentence.", 16), api_name="/send")
    assert "Queued" in queued[2], queued[2]
    chat = first.result(timeout=240)[0]
    users = [m["content"] for m in chat if m["role"] == "user"]
    users = [u if isinstance(u, str) else "".join(p.get("text", "") for p in u) for u in users]
    assert users == ["Tell me a long story about the sea.", "Now say it in one sentence."]
    assert len([m for m in chat if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")]) >= 3
