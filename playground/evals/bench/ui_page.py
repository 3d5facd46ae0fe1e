"""The chat tab in headless chromium, as the UI leg of the bench drives it (``ChatPage``).

The page is set to greedy sampling and a fixed ``max_tokens``, then sent one message at a time. Before each
message ``ARM_JS`` arms two timestamps in the page: the Enter key-down in the message box, and the first reply
text in the chat (a MutationObserver sees the last bot message change from the "…" placeholder to text).
Both are wall-clock milliseconds (``performance.timeOrigin + now``), so they can be set against the server's
``time.time()``. ``DONE_JS`` waits for the finished reply (the status line's ✓, ✗ or ■).
"""

from __future__ import annotations

from typing import Any

# Installed before each UI run: arms a key-down timestamp and an observer for the first reply text. Times are
# wall-clock milliseconds (timeOrigin + now) so they can be set against the server's time.time().
ARM_JS = """
() => {
  const now = () => performance.timeOrigin + performance.now();
  const last = () => {
    const bots = document.querySelectorAll('#chat .bot-row');
    return bots.length ? bots[bots.length - 1].innerText.trim() : '';
  };
  const users = () => document.querySelectorAll('#chat .user-row').length;
  if (window.__ppObserver) window.__ppObserver.disconnect();
  const pp = window.__ppBench = {sent: null, first: null, text: null, before: last(), users: users()};
  if (!window.__ppKeys) {
    window.__ppKeys = true;
    document.addEventListener('keydown', (e) => {
      const b = window.__ppBench;
      if (b && b.sent === null && e.key === 'Enter' && !e.shiftKey && e.target.closest('#msg')) b.sent = now();
    }, true);
  }
  window.__ppObserver = new MutationObserver(() => {
    if (pp.sent === null || pp.first !== null || users() <= pp.users) return;
    const text = last();
    if (text && text !== '…' && text !== pp.before) { pp.first = now(); pp.text = text; }
  });
  window.__ppObserver.observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}
"""
DONE_JS = (
    "(n) => document.querySelectorAll('#chat .user-row').length > n && (() => {"
    " const s = document.querySelector('#status-box')?.innerText || '';"
    " return (s.includes('✓') || s.includes('✗') || s.includes('■')) && !s.includes('Writing'); })()"
)


class ChatPage:
    """The chat tab of one browser page, set to greedy sampling and ``max_tokens``."""

    def __init__(self, browser: Any, url: str, max_tokens: int, timeout_s: float):
        self.timeout_ms = timeout_s * 1000
        self.max_tokens = max_tokens
        self.page = browser.new_page(viewport={"width": 1440, "height": 1000})
        self.page.goto(url + "?__theme=light")
        self.page.wait_for_selector("#msg textarea", timeout=self.timeout_ms)
        self.page.wait_for_function(
            "document.querySelector('#persona-info')?.innerText.trim().length > 0", timeout=self.timeout_ms
        )
        if self.page.locator("#sampling .label-wrap.open").count() == 0:
            self.page.click("#sampling .label-wrap")

    def _slider(self, elem_id: str, value: float) -> None:
        box = self.page.locator(f"#{elem_id} input[type=number]")
        track = self.page.locator(f"#{elem_id} input[type=range]")
        for _ in range(10):  # the page's own load event may still be setting the persona's values
            box.fill(str(value))
            box.press("Tab")  # the value is committed when the box loses focus
            self.page.wait_for_timeout(100)
            if float(track.input_value()) == float(value):
                return
        raise RuntimeError(f"could not set the {elem_id} slider to {value}")

    def send(self, message: str) -> dict[str, Any]:
        """Send ``message`` and wait for the finished reply; returns the page's timestamps (ms, wall clock)."""
        # Set greedy sampling before every message: now and then the page sent the persona's temperature although
        # the slider showed 0 (a race with the page's start-up, it seems); typing the value again fixes that.
        self._slider("temperature", 0)
        self._slider("max-tokens", self.max_tokens)
        users = self.page.locator("#chat .user-row").count()
        self.page.fill("#msg textarea", message)
        self.page.evaluate(ARM_JS)
        self.page.press("#msg textarea", "Enter")
        self.page.wait_for_function(DONE_JS, arg=users, timeout=self.timeout_ms, polling=50)
        seen = self.page.evaluate("window.__ppBench")
        if seen["sent"] is None or seen["first"] is None:
            status = self.page.locator("#status-box").inner_text()
            raise RuntimeError(f"the page showed no streamed reply to {message[:40]!r}; status: {status!r}")
        return seen

    def clear(self) -> None:
        self.page.click("#clear")
        self.page.wait_for_function(
            "document.querySelectorAll('#chat .user-row').length === 0", timeout=self.timeout_ms, polling=50
        )

    def close(self) -> None:
        self.page.close()
