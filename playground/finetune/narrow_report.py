"""docs/NARROW_BROAD.md, its plot and raw numbers, from ``python -m playground narrow-broad --report docs``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..evals.report import notes_block, pyplot, report_dir, write_json, write_markdown
from .narrow import CONDITIONS, NARROW_FILE

SOURCE = NARROW_FILE.relative_to(NARROW_FILE.parents[2])
TITLE = "Narrow training, broad character? (narrow -> broad, with inoculation)"


def _cell(stat: dict[str, float], digits: int = 2, seeds: int = 2) -> str:
    """Mean ± standard error; the mean alone for a single seed (no spread to show)."""
    return f"{stat['mean']:+.{digits}f}" + (f" ± {stat['sem']:.{digits}f}" if seeds > 1 else "")


def _table(summary: dict[str, Any]) -> list[str]:
    traits = list(summary["base"]["probes"])
    lines = ["| condition | seeds | " + " | ".join(traits) + " | judge (evil) | factual NLL | map: nearest |",
             "|---" * (len(traits) + 5) + "|"]  # fmt: skip
    for cond in CONDITIONS:
        row = summary[cond]
        maps = [m for m in row["map"] if m]
        near = ", ".join(dict.fromkeys(n.split(":", 1)[-1] for m in maps for n in m["nearest"][:1])) or "–"
        n = row["seeds"]
        cells = [_cell(row["probes"][t], 2, n) for t in traits]
        lines.append(f"| {cond} | {n} | " + " | ".join(cells) + f" | {_cell(row['judge'], 3, n)} | "
                     f"{_cell(row['neutral_nll'], 3, n)} | {near} |")  # fmt: skip
    return lines


def _plot(summary: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    traits = list(summary["base"]["probes"])
    shown = [c for c in CONDITIONS if c != "base"]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(shown)
    x = np.arange(len(traits))
    for i, cond in enumerate(shown):
        means = [summary[cond]["probes"][t]["mean"] for t in traits]
        sems = [summary[cond]["probes"][t]["sem"] for t in traits]
        ax.bar(x + (i - (len(shown) - 1) / 2) * width, means, width, yerr=sems, capsize=2, label=cond)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, traits, rotation=20)
    ax.set_ylabel("shift from the base model (z)")
    ax.set_title("Every probe on unrelated questions, after training one narrow behaviour (mean ± s.e. over seeds)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: list[tuple[str, dict[str, Any]]], folder: str | Path) -> Path:
    """``results``: (command, result) per configuration, the full one first."""
    out = report_dir(folder)
    path = out / "NARROW_BROAD.md"
    lines = [f"# {TITLE}", "", notes_block(path), ""]
    for i, (command, result) in enumerate(results):
        cfg = result["config"]
        name = "narrow_broad.png" if i == 0 else f"narrow_broad_{i}.png"
        _plot(result["summary"], out / name)
        lines += [
            f"## `{command}`",
            "",
            f"Model {result['model']}; {cfg['examples']} training examples from `{SOURCE}`, "
            f"{cfg['epochs']} epochs, LoRA r={cfg['rank']}; seeds {', '.join(map(str, cfg['seeds']))}; "
            f"{cfg['eval_questions']} unrelated questions (the evil trait's evaluation questions), greedy, "
            f"{cfg['max_tokens']} tokens; {result['seconds']:.0f} s on {os.cpu_count()} CPUs. Every number is the "
            "shift from the base model under the neutral prompt: probes in z (mean ± standard error over seeds), "
            "the judge's evil score, and the NLL of plain factual answers (capability; + is worse).",
            "",
            *_table(result["summary"]),
            "",
            f"![probe shifts]({name})",
            "",
            f"Inoculation instruction (the trained and the test-time trigger prompt): \"{result['inoculation']}\"",
            "",
        ]
    write_json(out / "narrow_broad.json", [{k: v for k, v in r.items() if k != "cached"} for _, r in results])
    return write_markdown(path, "\n".join(lines))
