"""Take README screenshots of a running playground with Debian chromium (no browser download).

Usage: python scripts/screenshot.py URL OUT.png [MESSAGE]
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    url, out = sys.argv[1], sys.argv[2]
    message = sys.argv[3] if len(sys.argv) > 3 else "Hello! Who are you?"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url)
        page.wait_for_selector("#msg textarea", timeout=30000)
        page.fill("#msg textarea", message)
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('#chat .bot-row').length >= 2", timeout=60000)
        page.wait_for_timeout(4000)
        page.screenshot(path=out, full_page=True)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
