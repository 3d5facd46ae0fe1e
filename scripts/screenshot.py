"""Take the README screenshots of a running playground with Debian chromium (no browser download).

Usage: python scripts/screenshot.py URL [OUT_DIR]    (default OUT_DIR: docs/)

Start the UI first, e.g. ``PLAYGROUND_THREADS=1 python launch.py --persona pirate --port 7861``. Writes
screenshot-chat.png (a streamed reply with the probe panel), screenshot-dark.png (dark theme, large type),
screenshot-editor.png (an edit with a located error) and screenshot-compare.png (steered vs unsteered).
The helpers are shared with tests/test_browser.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playground.evals.bench.ui_leg import CHROMIUM, CHROMIUM_ARGS

VIEWPORT = {"width": 1440, "height": 1000}


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser, url: str, dark: bool = False):
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1, color_scheme="dark" if dark else "light")
    page.goto(url + ("?__theme=dark" if dark else "?__theme=light"))
    page.wait_for_selector("#msg textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#persona-info')?.innerText.trim().length > 0", timeout=60_000)
    return page


def send_message(page, message: str, timeout_ms: int = 120_000, box: str = "#msg textarea") -> None:
    """Type a message, press Enter and wait until the reply is finished (the status line says ✓, ✗ or ■)."""
    users = page.locator("#chat .user-row").count()
    page.fill(box, message)
    page.press(box, "Enter")
    try:
        page.wait_for_function(
            f"document.querySelectorAll('#chat .user-row').length > {users}"
            " && (() => { const s = document.querySelector('#status-box')?.innerText || '';"
            " return (s.includes('✓') || s.includes('✗') || s.includes('■')) && !s.includes('Writing'); })()",
            timeout=timeout_ms,
        )
    except Exception as exc:
        status = page.locator("#status-box").inner_text()
        chat = page.locator("#chat").inner_text()[-500:]
        raise AssertionError(f"no finished reply to {message!r}; status: {status!r}; chat ends: {chat!r}") from exc
    page.wait_for_timeout(600)


def select_persona(page, label: str) -> None:
    pick(page, "persona-select", label)
    page.wait_for_function(f"document.querySelector('#persona-info')?.innerText.includes({label!r})", timeout=30_000)


def open_accordion(page, elem_id: str) -> None:
    """Open a closed gr.Accordion (its children are not in the page until then)."""
    if page.locator(f"#{elem_id} > button.label-wrap.open, #{elem_id} .label-wrap.open").count() == 0:
        page.click(f"#{elem_id} .label-wrap")
        page.wait_for_timeout(300)


def set_slider(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")  # the value is committed when the box loses focus
    page.wait_for_timeout(200)


def pick(page, elem_id: str, label: str) -> None:
    """Choose an option of a gr.Dropdown."""
    page.click(f"#{elem_id} input")
    page.click(f"li.item:has-text({label!r})")
    page.wait_for_timeout(300)


def top(page) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)


def edit_line(page, prefix: str, new_text: str) -> None:
    """Replace the first line of the persona editor that starts with ``prefix``."""
    lines = page.locator("#persona-code .cm-line")
    for i in range(lines.count()):
        if lines.nth(i).inner_text().startswith(prefix):
            lines.nth(i).click()
            page.keyboard.press("Home")
            page.keyboard.press("Shift+End")
            page.keyboard.insert_text(new_text)
            return
    raise AssertionError(f"no line starting with {prefix!r} in the editor")


def main() -> int:
    from playwright.sync_api import sync_playwright

    url = sys.argv[1].rstrip("/") + "/"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = open_page(browser, url)
        select_persona(page, "Assistant")
        open_accordion(page, "sampling")
        set_slider(page, "temperature", 0)
        set_slider(page, "max-tokens", 64)
        set_slider(page, "steer-humorous", 1)
        send_message(page, "Tell me about the moon.")
        set_slider(page, "steer-humorous", 0)
        set_slider(page, "steer-evil", 2)
        send_message(page, "What should I do about my annoying neighbour?")
        pick(page, "heat-trait", "evil")
        top(page)
        page.screenshot(path=str(out / "screenshot-chat.png"))

        page.click("button[role=tab]:has-text('Compare')")
        page.fill("#cmp-msg textarea", "How should I spend a rainy Sunday?")
        page.click("#cmp-go")
        page.wait_for_function("document.body.innerText.includes('Both answered')", timeout=120_000)
        page.wait_for_timeout(500)
        top(page)
        page.screenshot(path=str(out / "screenshot-compare.png"), full_page=True)

        page.click("button[role=tab]:has-text('Persona editor')")
        page.wait_for_selector("#persona-code .cm-content")
        page.click("#persona-code .cm-content")
        edit_line(page, "steering:", "steering: {humorous: 5, evil: -1}")
        page.wait_for_function("document.querySelector('#ed-issues')?.innerText.includes('Line')", timeout=30_000)
        page.wait_for_timeout(300)
        top(page)
        page.screenshot(path=str(out / "screenshot-editor.png"))
        page.close()

        page = open_page(browser, url, dark=True)
        page.click("#large-type input")
        open_accordion(page, "sampling")
        set_slider(page, "temperature", 0)
        set_slider(page, "max-tokens", 48)
        send_message(page, "Give me one tip for a calm morning.")
        top(page)
        page.screenshot(path=str(out / "screenshot-dark.png"))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
