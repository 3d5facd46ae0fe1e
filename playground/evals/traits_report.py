"""docs/TRAITS_EVAL.md from a held-out trait evaluation (``traits_run.py``): tables, plots and the raw JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .report import generated_by, machine, pyplot, report_dir, report_header, write_json, write_markdown
from .traits_run import summary_rows

MARKER = "<!-- analysis -->"


def _f(x: Any, fmt: str = ".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)


def _heatmap(ax: Any, data: Mapping[str, Mapping[str, float]], title: str, vmin: float, vmax: float, cmap: str) -> None:
    rows = list(data)
    cols = list(next(iter(data.values())))
    grid = np.array([[data[r].get(c, np.nan) for c in cols] for r in rows])
    im = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(cols)), [c[:9] for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[:12] for r in rows], fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            dark = (grid[i, j] - vmin) / (vmax - vmin) < 0.55  # both colour maps start dark
            label = f"{grid[i, j]:.2f}" if abs(grid[i, j]) < 10 else f"{grid[i, j]:.0f}"
            ax.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)


def plot(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    plt = pyplot()
    sep = result["sets"]["shipped"]["separation"]
    fig, axes = plt.subplots(1, 2 if result.get("steering") else 1, figsize=(12, 5), squeeze=False)
    _heatmap(
        axes[0, 0],
        sep["matrix"],
        "AUROC of probe (column) on replies elicited for trait (row) vs neutral",
        0.3,
        1.0,
        "viridis",
    )
    if result.get("steering"):
        cross = {t: s["crosstalk"] for t, s in result["steering"].items() if s["crosstalk"]}
        _heatmap(axes[0, 1], cross, "live z of probe (column) when steering trait (row) at +1", -2, 6, "magma")
    fig.tight_layout()
    paths = [out_dir / "traits-specificity.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    rows = sep["per_trait"]
    names = list(rows)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 3.8))
    for k, (label, key) in enumerate(
        [
            ("response mean", "auroc_response"),
            ("last prompt token", "auroc_prompt_last"),
            ("specificity (vs other traits)", "specificity"),
        ]
    ):
        ax.bar(x + (k - 1) * 0.27, [rows[n][key] for n in names], 0.27, label=label)
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0.3, 1.02)
    ax.set_ylabel("held-out AUROC")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(out_dir / "traits-auroc.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def _summary_table(result: Mapping[str, Any], before: Mapping[str, Any] | None) -> list[str]:
    now = summary_rows(result)
    old = summary_rows(before) if before else {}
    sep = result["sets"]["shipped"]["separation"]["per_trait"]
    lines = [
        "| trait | probe | AUROC response mean | AUROC last prompt token | instructions / personas | specificity | "
        "judge AUROC | everyday \\|z\\|<1 | degenerate at +1 | steered probe minus next |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    probes = result["probes"]
    for t, r in now.items():
        b = old.get(t, {})

        def cell(key: str, fmt: str = ".2f", r: Mapping[str, float] = r, b: Mapping[str, float] = b) -> str:
            return f"{_f(b.get(key), fmt)} → **{_f(r.get(key), fmt)}**" if b else f"**{_f(r.get(key), fmt)}**"

        lines.append(
            f"| {t} | L{probes[t]['layer']} {probes[t]['method']} | {cell('auroc_response')} | "
            f"{cell('auroc_prompt_last')} | {_f(sep[t]['auroc_instructions'])} / {_f(sep[t]['auroc_personas'])} | "
            f"{cell('specificity')} | {_f(result['judge_auroc'].get(t))} | {cell('everyday_share_below_1', '.0%')} | "
            f"{cell('degenerate_at_1', '.0%')} | {cell('steer_own_minus_max_other', '+.2f')} |"
        )
    return lines


def _alternatives_table(result: Mapping[str, Any]) -> list[str]:
    sets = result["sets"]
    traits = list(sets["shipped"]["separation"]["per_trait"])
    lines = [
        "| method | mean AUROC | min AUROC | mean specificity | min specificity | everyday \\|z\\|<1 | "
        + " | ".join(traits)
        + " |",
        "|---" * (6 + len(traits)) + "|",
    ]
    for name, s in sets.items():
        rows = s["separation"]["per_trait"]
        own = [rows[t]["auroc_response"] for t in traits]
        spec = [rows[t]["specificity"] for t in traits]
        zero = np.mean([s["zero"]["everyday"][t]["share_below_1"] for t in traits])
        cells = " | ".join(f"{rows[t]['auroc_response']:.2f}/{rows[t]['specificity']:.2f}" for t in traits)
        lines.append(
            f"| {name} | {np.mean(own):.2f} | {min(own):.2f} | {np.mean(spec):.2f} | {min(spec):.2f} | "
            f"{zero:.0%} | {cells} |"
        )
    return lines


def _zero_table(result: Mapping[str, Any]) -> list[str]:
    zero = result["sets"]["shipped"]["zero"]
    lines = [
        "| probe | everyday mean z | largest \\|z\\| | share \\|z\\|<1 | held-out characters, mean z |",
        "|---|---|---|---|---|",
    ]
    chars = zero.get("in_character", {})
    for t, r in zero["everyday"].items():
        lines.append(
            f"| {t} | {r['mean_z']:+.2f} | {r['max_abs_z']:.2f} | {r['share_below_1']:.0%} | "
            f"{_f(chars.get(t), '+.2f')} |"
        )
    return lines


def _steering_table(result: Mapping[str, Any]) -> list[str]:
    steer = result.get("steering") or {}
    if not steer:
        return ["(not run)"]
    doses = list(next(iter(steer.values()))["degenerate"])
    lines = [
        "| trait | " + " | ".join(f"degenerate at +{d}" for d in doses) + " | reasons at +1 | example at +1 |",
        "|---" * (len(doses) + 3) + "|",
    ]
    for t, s in steer.items():
        d1 = s["degenerate"].get("1", {})
        why = ", ".join(f"{k} {v}" for k, v in d1.get("why", {}).items()) or "–"
        example = (d1.get("example") or "–").replace("|", "\\|").replace("\n", " ")[:90]
        lines.append(
            f"| {t} | " + " | ".join(f"{s['degenerate'][d]['share']:.0%}" for d in doses) + f" | {why} | {example} |"
        )
    return lines


def write_traits_report(
    result: Mapping[str, Any], out_dir: Path, *, command: str, before: Mapping[str, Any] | None = None
) -> Path:
    out_dir = report_dir(out_dir)
    plots = plot(result, out_dir)
    write_json(out_dir / "traits-eval.json", result)
    lines = [
        *report_header("Trait probes and steering: held-out evaluation", notes_from=out_dir / "TRAITS_EVAL.md"),
        f"Model `{result['model_id']}`, backend `{result['backend']}`, machine: {machine(processor=True)}. "
        f"{generated_by(command, result['seconds'])}; greedy decoding, so a rerun on this machine reproduces it. "
        "Raw per-item records (every reply's text and every probe's z): `traits-eval.json`.",
        "",
        "Everything here is held out: the instructions, natural personas, questions and everyday prompts come from "
        f"`{result.get('heldout_file', 'personas/heldout/traits_eval.yml')}`, written apart from extraction and "
        "checked by "
        "`tests/test_heldout_overlap.py` (no shared word 6-gram with any training-side text).",
        "",
        "## Per trait" + (" (before → after)" if before else ""),
        "",
        *_summary_table(result, before),
        "",
        f"![AUROC]({plots[1].name})",
        "",
        "## Specificity: which probe fires for which trait",
        "",
        f"![specificity]({plots[0].name})",
        "",
        "## Methods compared (held-out AUROC / specificity per trait)",
        "",
        *_alternatives_table(result),
        "",
        "## Zero = a typical assistant reply",
        "",
        *_zero_table(result),
        "",
        "## Steering: degenerate replies per strength",
        "",
        *_steering_table(result),
        "",
    ]
    path = out_dir / "TRAITS_EVAL.md"
    if not (path.is_file() and MARKER in path.read_text(encoding="utf-8")):
        lines.append(MARKER)
    return write_markdown(path, "\n".join(lines) + "\n", keep_from=MARKER)


def load_result(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
