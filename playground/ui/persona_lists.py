"""Every persona picker of the page, kept in step with the persona files on disk.

The page is built once per server, so the choices a picker was built with are those of server start. Each page
load reads the list afresh, and a timer on every open page compares a cheap signature of the persona folders
(names, sizes, modification times) with the one it last showed: a persona saved in one tab, by another user or
by an editor outside the UI appears in every open tab within a few seconds, without reloading the page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..definitions.personas import Catalog
from .editor_logic import file_choices

REFRESH_SECONDS = 3.0


def catalog_signature(catalog: Catalog) -> str:
    """Changes whenever a persona file is added, removed, renamed or rewritten."""
    h = hashlib.sha1()
    for pid, path in sorted(catalog.persona_files().items()):
        try:
            st = path.stat()
            h.update(f"{pid}\0{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:  # deleted between listing and stat: the next tick sees it gone
            h.update(f"{pid}\0gone\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Picker:
    dropdown: gr.Dropdown
    choices: Callable[[Catalog], list[tuple[str, str]]] = file_choices


def wire_persona_pickers(demo: gr.Blocks, catalog: Catalog, pickers: Sequence[Picker]) -> gr.Timer:
    """Refresh every picker's choices when the page loads and whenever the persona files change (the value each
    picker shows is left alone)."""
    seen = gr.State(None)
    outputs = [seen, *(p.dropdown for p in pickers)]

    def refresh(last: str | None, force: bool) -> list[Any]:
        now = catalog_signature(catalog)
        if now == last and not force:
            return [gr.skip()] * len(outputs)
        return [now, *(gr.Dropdown(choices=p.choices(catalog)) for p in pickers)]

    demo.load(lambda last: refresh(last, True), seen, outputs, api_visibility="private", show_progress="hidden")
    timer = gr.Timer(REFRESH_SECONDS)
    timer.tick(
        lambda last: refresh(last, False),
        seen,
        outputs,
        api_visibility="private",
        show_progress="hidden",
        concurrency_limit=None,  # a stat of a few files: never waits behind a reply being generated
        queue=False,
    )
    return timer
