"""Helpers shared by the browser test modules (their fixtures, ``url``/``browser``/``user_dir``/``out_dir``, are
in conftest.py): the page watcher script, file uploads, and scripts/screenshot.py's chromium helpers."""

from __future__ import annotations

import sys
from pathlib import Path

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import screenshot as shots  # noqa: E402, F401  # re-exported; scripts/screenshot.py: chromium flags and page helpers

# Records every text the last bot message shows, with a timestamp, and when Enter was pressed in the box.
WATCH_JS = """
() => {
  const last = () => {
    const bots = document.querySelectorAll('#chat .bot-row');
    return bots.length ? bots[bots.length - 1].innerText.trim() : '';
  };
  window.__pp = {sent: null, seen: [], before: last()};
  document.querySelector('#msg textarea').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) window.__pp.sent = performance.now();
  }, true);
  new MutationObserver(() => {
    const text = last(), seen = window.__pp.seen;
    if (window.__pp.sent === null || text === window.__pp.before) return;
    if (text && text !== '…' && (!seen.length || seen[seen.length - 1].text !== text))
      seen.push({t: performance.now(), text});
  }).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}
"""


def upload(page, button: str, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click(button)
    chooser.value.set_files(str(path))
