"""Gradio Blocks UI: the app, its tabs and the API. Handlers only adapt library calls to components:

- ``playground.ui.chat_state``: ``ChatState`` (a tab's conversation, streaming, stop, undo, export/import);
  ``playground.ui.api``: ``api_chat`` (the stateless ``chat`` API);
- ``playground.ui.views`` / ``plots``: chat messages, probe bars, heatmap, trend, guard alerts, policy table;
- tabs: ``chat_tab`` (one module per part of the page), ``compare_tab`` (side by side), ``editor_tab`` (persona
  editor over ``editor_logic``), ``lab_tab`` (over ``lab``).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..chat.session import Playground
from ..errors import PlaygroundError
from . import editor_logic as editor
from . import plots
from .api import api_chat
from .chat_tab import build_chat_tab
from .compare_tab import build_compare_tab
from .editor_tab import build_editor_tab
from .persona_lists import Picker, wire_persona_pickers
from .views import describe_error, error_md, model_banner

try:  # the Lab tab (playground.ui.lab_tab) is optional: the playground works without it
    from .lab_tab import build_lab_tab
except ImportError:  # pragma: no cover - an installation without the lab
    build_lab_tab = None


# Large type for a projector. Gradio's theme defines its size variables (--button-large-text-size: var(--text-lg),
# ...) on :root, where var() is resolved: raising --text-* on <body> alone reaches nothing derived from them. The
# dark theme redefines them all on body.dark, which is why large type used to work in dark mode only. So the derived
# ones are redefined here too (small buttons get the body size: Stop, Undo... must read from the back of a room).
LARGE_TYPE_CSS = """
body.pp-large {--text-xxs: 13px !important; --text-xs: 15px !important; --text-sm: 17px !important;
  --text-md: 20px !important; --text-lg: 23px !important; --text-xl: 28px !important; --text-xxl: 34px !important;
  --body-text-size: var(--text-md) !important; --block-info-text-size: var(--text-sm) !important;
  --block-label-text-size: var(--text-md) !important; --block-title-text-size: var(--text-md) !important;
  --section-header-text-size: var(--text-md) !important; --chatbot-text-size: var(--text-lg) !important;
  --checkbox-label-text-size: var(--text-md) !important; --input-text-size: var(--text-md) !important;
  --prose-text-size: var(--text-md) !important; --button-large-text-size: var(--text-lg) !important;
  --button-medium-text-size: var(--text-md) !important; --button-small-text-size: var(--text-md) !important}
"""

# The header at phone width: the title keeps its words whole and the badge and look controls go below it.
HEADER_CSS = """
#header {flex-wrap: wrap; row-gap: 0.3em; align-items: center}
#title {flex: 0 1 auto !important; width: auto !important; min-width: min(100%, 12em) !important}
#title h2 {margin: 0; overflow-wrap: normal; word-break: normal; white-space: nowrap}
#badge {flex: 1 1 20em; min-width: 0; overflow-wrap: anywhere}
#model-notices {border-left: 4px solid #d97706; padding: 0.2em 0.8em; background: rgba(217, 119, 6, 0.08)}
@media (max-width: 640px) {
  #title h2 {font-size: 1.35em; white-space: normal}
  #badge {flex-basis: 100%; font-size: 0.85em}
  #badge, #badge * {text-align: left !important}
  #look {flex: 1 1 100% !important; flex-direction: row !important; flex-wrap: wrap; align-items: center;
    min-width: 0 !important}
  #look > * {flex: 1 1 auto !important; width: auto !important}
}
"""

CSS = (
    plots.PANEL_CSS
    + HEADER_CSS
    + """
#status-box {min-height: 1.6em; font-size: 0.95em}
#badge {text-align: right}
.pp-keys {color: var(--body-text-color-subdued); font-size: 0.85em}
.pp-ok {color: #15803d; font-weight: 600}
.dark .pp-ok {color: #4ade80}
.pp-bad {color: #b91c1c; font-weight: 600}
.dark .pp-bad {color: #f87171}
.pp-issues ul {margin: 0.3em 0 0 1.1em; padding: 0}
.pp-issues li {margin-bottom: 0.5em}
.pp-issues pre {margin: 0.2em 0 0; padding: 0.3em 0.5em; font-size: 0.85em; overflow-x: auto;
  background: var(--block-background-fill); border: 1px solid var(--border-color-primary); border-radius: 4px}
.error-box {color: #b00020; white-space: pre-wrap; font-family: monospace}
"""
    + LARGE_TYPE_CSS
    + """
body.pp-large .prose, body.pp-large #chat .message {font-size: 22px !important; line-height: 1.45}
body.pp-large .cm-content {font-size: 18px}
"""
)

# Keyboard: Enter sends, Shift+Enter adds a line, Esc stops, Alt+R regenerates, Alt+Z undoes, Alt+L clears,
# Alt+D switches dark/light, "/" focuses the message box, Ctrl+S saves in the persona editor.
HEAD = """
<script>
(() => {
  const click = (id) => { const b = document.getElementById(id); if (b) { b.click(); return true; } return false; };
  document.addEventListener('keydown', (e) => {
    const typing = ['TEXTAREA', 'INPUT'].includes(e.target.tagName) || e.target.isContentEditable;
    if (e.key === 'Escape') { click('stop'); return; }
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's' && e.target.closest('#persona-code')) {
      e.preventDefault(); click('ed-save'); return;
    }
    if (e.altKey && !e.ctrlKey && !e.metaKey) {
      const map = {r: 'regen', z: 'undo', l: 'clear', d: 'theme-toggle'};
      const id = map[e.key.toLowerCase()];
      if (id && click(id)) e.preventDefault();
      return;
    }
    if (e.key === '/' && !typing) {
      const box = document.querySelector('#msg textarea');
      if (box) { e.preventDefault(); box.focus(); }
    }
  });
})();
</script>
"""

# Theme and large type are remembered in the browser (localStorage); an explicit ?__theme=... in the URL wins.
THEME_JS = """() => {
  const dark = document.body.classList.toggle('dark');
  localStorage.setItem('pp-theme', dark ? 'dark' : 'light');
}"""
LARGE_JS = """(on) => {
  document.body.classList.toggle('pp-large', !!on);
  localStorage.setItem('pp-large', on ? '1' : '0');
  return on;
}"""
RESTORE_LOOK_JS = """() => {
  const theme = localStorage.getItem('pp-theme');
  const fromUrl = new URLSearchParams(location.search).has('__theme');
  if (theme && !fromUrl) document.body.classList.toggle('dark', theme === 'dark');
  return localStorage.getItem('pp-large') === '1';
}"""


def launch_options() -> dict[str, Any]:
    """Styling and scripts that ``Blocks.launch`` takes in Gradio 6 (use with every launch of ``build_ui``)."""
    return {"css": CSS, "head": HEAD, "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="amber")}


# -- the app --------------------------------------------------------------------------------------------------
def build_ui(pg: Playground, default_persona: str = "assistant") -> gr.Blocks:
    """The whole app: header, Chat / Compare / Persona editor (/ Lab) tabs, and the ``chat`` API."""
    traits = pg.vectors.names()
    heat_default = "humorous" if "humorous" in traits else (traits[0] if traits else None)
    choices = editor.file_choices(pg.catalog)
    ids = [pid for _, pid in choices]
    start = default_persona if default_persona in ids else ("assistant" if "assistant" in ids else ids[0])

    with gr.Blocks(title="Persona Playground", fill_width=True) as demo:
        with gr.Row(elem_id="header"):
            gr.Markdown("## Persona Playground", elem_id="title")
            badge_md = gr.Markdown(elem_id="badge")
            with gr.Column(scale=0, min_width=170, elem_id="look"):
                theme_btn = gr.Button("◐ Dark / light", size="sm", elem_id="theme-toggle")
                large = gr.Checkbox(label="Large type (projector)", value=False, elem_id="large-type", container=False)

        readiness = model_banner(pg)  # what the running model lacks (an unprepared model): said, not hidden
        gr.Markdown(readiness, elem_id="model-notices", visible=bool(readiness))
        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(pg, choices, start, traits, heat_default, badge_md, tabs)
            with gr.Tab("Compare", id="compare"):
                compare = build_compare_tab(pg, choices, start, traits, heat_default)
            with gr.Tab("Persona editor", id="editor"):
                editor_tab = build_editor_tab(pg, choices, start, chat.link)
            lab: dict[str, Any] = {}
            if build_lab_tab is not None:
                with gr.Tab("Lab", id="lab"):
                    try:
                        lab = build_lab_tab(pg)
                    except Exception as exc:  # an optional tab must never take the whole UI down
                        gr.Markdown(error_md(f"The Lab tab could not be built: {describe_error(exc)}"))

        demo.load(*editor_tab["on_load"], api_visibility="private")
        demo.load(*chat.on_load, api_name="load", api_visibility="private")
        pickers = [Picker(chat.link.persona_dd), Picker(editor_tab["file"])]
        pickers += [Picker(side[0]) for side in compare["sides"].values()]
        pickers += [Picker(lab[k]) for k in ("roles_persona", "rank_persona") if k in lab]
        wire_persona_pickers(demo, pg.catalog, pickers)

        # -- look -------------------------------------------------------------------------------------
        theme_btn.click(None, None, None, js=THEME_JS)
        large.change(None, large, None, js=LARGE_JS)
        demo.load(None, None, large, js=RESTORE_LOOK_JS, api_visibility="private")

        # -- the API: same object as `python -m playground chat --json` -------------------------------
        def chat_endpoint(
            message: str,
            persona: str,
            steer_json: str = "",
            temperature: float | None = None,
            seed: int | None = None,
            max_tokens: int | None = None,
        ) -> dict:
            """Chat once with a persona; returns the same JSON object as `python -m playground chat --json`.

            steer_json: a JSON object of trait -> strength (-2..2), e.g. {"humorous": 1}; "" for none.
            temperature / seed / max_tokens: optional sampling overrides (default: the persona's).
            """
            try:
                return api_chat(
                    pg, message, persona, steer_json, temperature=temperature, seed=seed, max_tokens=max_tokens
                )
            except PlaygroundError as exc:
                raise gr.Error(describe_error(exc)) from exc

        gr.api(chat_endpoint, api_name="chat")
    return demo
