"""The probe panels' stylesheet (classes of ``playground.ui.plots``): colours from CSS variables that follow the
light/dark theme, sizes that follow the page's ``pp-large`` class (large type for a projector)."""

PANEL_CSS = """
.pp-panel {--pp-fg: #1f2328; --pp-muted: #6b7280; --pp-track: #eef0f3; --pp-bar: #3b82f6; --pp-neg: #94a3b8;
  --pp-warn: #d97706; --pp-act: #dc2626; --pp-border: #d0d7de; --pp-bg: transparent;
  --pp-size: 14px; font-size: var(--pp-size); color: var(--pp-fg);}
/* Gradio prefixes custom rules with its container classes, so the overrides need !important to win. */
.dark .pp-panel {--pp-fg: #e6edf3 !important; --pp-muted: #9aa4b2 !important; --pp-track: #2d333b !important;
  --pp-bar: #60a5fa !important; --pp-neg: #64748b !important; --pp-warn: #f59e0b !important;
  --pp-act: #f87171 !important; --pp-border: #444c56 !important;}
.pp-large .pp-panel {--pp-size: 19px !important;}
.pp-empty {color: var(--pp-muted); font-style: italic; padding: 0.5em 0;}
.pp-head {display: flex; justify-content: space-between; color: var(--pp-muted); font-size: 0.85em;
  margin-bottom: 0.3em;}
.pp-row {display: grid; grid-template-columns: 8.5em 1fr 3.6em; align-items: center; gap: 0.5em; margin: 0.18em 0;}
.pp-name {text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: help;}
.pp-row.unreliable {opacity: 0.45;}
.pp-row.unreliable .pp-name {font-style: italic; text-decoration: underline dotted;}
.pp-row.unreliable .pp-bar {
  background: repeating-linear-gradient(45deg, #9ca3af, #9ca3af 3px, #d1d5db 3px, #d1d5db 6px);
}
.pp-val {font-variant-numeric: tabular-nums; text-align: right; font-weight: 600;}
.pp-track {position: relative; height: 1.15em; background: var(--pp-track); border-radius: 3px;}
.pp-bar {position: absolute; top: 0.12em; bottom: 0.12em; background: var(--pp-bar); border-radius: 2px;}
.pp-bar.neg {background: var(--pp-neg);}
.pp-bar.warn {background: var(--pp-warn);}
.pp-bar.act {background: var(--pp-act);}
.pp-zero {position: absolute; top: -0.1em; bottom: -0.1em; width: 1px; background: var(--pp-fg); opacity: 0.55;}
.pp-thr {position: absolute; top: -0.15em; bottom: -0.15em; width: 0; border-left: 2px dashed var(--pp-warn);}
.pp-thr.act {border-left: 2px solid var(--pp-act);}
.pp-tick {position: absolute; top: -0.25em; width: 0; height: 0; margin-left: -0.3em;
  border-left: 0.3em solid transparent; border-right: 0.3em solid transparent; border-top: 0.45em solid var(--pp-fg);}
.pp-axis {display: grid; grid-template-columns: 8.5em 1fr 3.6em; gap: 0.5em; color: var(--pp-muted);}
.pp-axis-inner {position: relative; height: 1.1em;}
.pp-axis-inner span {position: absolute; transform: translateX(-50%); font-size: 0.8em;}
.pp-legend {color: var(--pp-muted); font-size: 0.8em; margin-top: 0.35em; line-height: 1.6;}
.pp-legend .pp-weak {display: block; font-style: italic;}
.pp-legend i {display: inline-block; vertical-align: middle; margin: 0 0.25em 0 0.6em;}
.pp-legend i.bar {width: 1.2em; height: 0.6em; background: var(--pp-bar);}
.pp-legend i.warn {height: 0.9em; border-left: 2px dashed var(--pp-warn);}
.pp-legend i.act {height: 0.9em; border-left: 2px solid var(--pp-act);}
.pp-legend i.tick {border-left: 0.3em solid transparent; border-right: 0.3em solid transparent;
  border-top: 0.45em solid var(--pp-fg);}
.pp-heat {line-height: 1.9; white-space: pre-wrap; word-break: break-word; max-height: 16em; overflow-y: auto;
  border: 1px solid var(--pp-border); border-radius: 6px; padding: 0.4em 0.6em;}
.pp-heat span.t {border-radius: 3px; padding: 0.08em 0; cursor: help;}
.pp-heat span.hot {color: #fff;}
.pp-scale .pp-about {cursor: help; text-decoration: underline dotted;}
.pp-scale {display: flex; align-items: center; gap: 0.4em; color: var(--pp-muted); font-size: 0.8em; margin-top: 0.3em;}
.pp-scale .grad {flex: 1; height: 0.6em; border-radius: 3px;
  background: linear-gradient(90deg, rgba(37,99,235,0.85), rgba(37,99,235,0) 50%, rgba(220,38,38,0) 50%,
  rgba(220,38,38,0.85));}
.pp-trend svg {width: 100%; height: auto; overflow: visible;}
.pp-trend text {fill: var(--pp-muted); font-size: 10px;}
.pp-trend .grid {stroke: var(--pp-border); stroke-width: 0.6;}
.pp-trend .zero {stroke: var(--pp-fg); stroke-width: 0.8; opacity: 0.5;}
.pp-chip {display: inline-block; margin-right: 0.8em; white-space: nowrap;}
.pp-chip b {display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.25em;
  vertical-align: middle;}
.pp-alerts {display: flex; flex-direction: column; gap: 0.25em;}
.pp-alert {border-left: 4px solid var(--pp-warn); padding: 0.15em 0.6em; border-radius: 4px;
  background: rgba(217,119,6,0.10);}
.pp-alert.act {border-left-color: var(--pp-act); background: rgba(220,38,38,0.10);}
.pp-alert small {color: var(--pp-muted);}
.pp-table {border-collapse: collapse; width: 100%; font-size: 0.92em;}
.pp-table th, .pp-table td {border-bottom: 1px solid var(--pp-border); padding: 0.2em 0.45em; text-align: left;}
.pp-table td.num {text-align: right; font-variant-numeric: tabular-nums;}
.pp-note {color: var(--pp-muted); font-size: 0.85em; margin-top: 0.3em;}
.pp-map {max-width: 640px;}
.pp-map svg {width: 100%; height: auto; overflow: visible;}
.pp-map circle.char {fill: var(--pp-muted); opacity: 0.35;}
.pp-map circle.named {fill: var(--pp-bar); opacity: 0.55;}
.pp-map circle.sel {fill: none; stroke: var(--pp-bar); stroke-width: 3;}
.pp-map text {font-size: 10px; fill: var(--pp-muted);}
.pp-map text.sel {fill: var(--pp-fg); font-weight: 600;}
.pp-map .trail {fill: none; stroke: #d9480f; stroke-width: 1.6; opacity: 0.7;}
.pp-map circle.mark {stroke-width: 2.5;}
.pp-map circle.mark.live {stroke-dasharray: 3 2;}
.pp-map text.mark-label {fill: #fff; font-size: 9px; font-weight: 700;}
.pp-map text.mark-label.live {fill: #d9480f;}
.pp-map-caption {color: var(--pp-muted); font-size: 0.85em; margin-top: 0.2em;}
"""
