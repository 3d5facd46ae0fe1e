"""docs/FINETUNE.md: plots and tables of the fine-tuning demo (full and quick presets).

The report is regenerated from cached results; a hand-written block between ``<!-- notes -->`` and
``<!-- /notes -->`` in an existing report is kept as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evals.report import machine, pyplot, report_dir, report_header, write_json, write_markdown
from .demo import DemoResult

LABELS = {
    "none": "no fine-tune",
    "elicited": "no fine-tune + eliciting prompt",
    "plain": "plain fine-tune",
    "inoculated": "inoculation",
    "steered": "preventative steering",
}


def _label(run: str) -> str:
    if run.startswith("steered-"):
        return f"preventative steering x{run.split('-', 1)[1].replace('p', '.')}"
    return LABELS.get(run, run)


def _color(run: str) -> str:
    if run in ("none", "elicited"):
        return "#888888"
    if run == "plain":
        return "#c44e52"
    if run == "inoculated":
        return "#55a868"
    return "#4c72b0" if run == "steered" else "#8fb0d8"


def order(result: DemoResult) -> list[str]:
    runs = ["none", "plain", "inoculated", "steered"] + [r for r in result.evals if r.startswith("steered-")]
    return [r for r in runs if r in result.evals] + (["elicited"] if "elicited" in result.evals else [])


def acquisition(result: DemoResult, metric: str) -> dict[str, float]:
    """How much of the plain fine-tune's shift (vs no fine-tune) each run kept: 1 = all, 0 = none."""
    s = {k: v.summary() for k, v in result.evals.items()}
    gain = s["plain"][metric] - s["none"][metric]
    if abs(gain) < 1e-9:
        return {}
    return {k: (s[k][metric] - s["none"][metric]) / gain for k in s if k not in ("none", "elicited")}


def plot(result: DemoResult, path: Path) -> Path:
    plt = pyplot()
    runs = order(result)
    s = {k: result.evals[k].summary() for k in runs}
    colors = [_color(r) for r in runs]
    panels = [
        ("probe", "probe_sem", f"{result.config.trait} probe, reply mean (z)"),
        ("probe_prompt", "probe_prompt_sem", f"{result.config.trait} probe, last prompt token (z)"),
        ("judge", "judge_sem", f"judge: {result.config.trait} (MiniLM anchors)"),
        ("neutral_nll", None, "capability: NLL on neutral text (lower = better)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 5.2))
    x = np.arange(len(runs))
    for ax, (key, sem, title) in zip(axes, panels, strict=True):
        ax.bar(x, [s[r][key] for r in runs], yerr=[s[r][sem] for r in runs] if sem else None, color=colors, capsize=3)
        ax.set_xticks(x, [_label(r) for r in runs], fontsize=7.5, rotation=35, ha="right")
        ax.set_title(title, fontsize=9)
        ax.axhline(0, color="black", lw=0.6)
        if key == "neutral_nll":
            lo = min(s[r][key] for r in runs)
            ax.set_ylim(max(0, lo - 0.3), max(s[r][key] for r in runs) + 0.15)
    cfg = result.config
    fig.suptitle(
        f"Fine-tuning on {len(result.dataset)} {cfg.trait}-laden replies; held-out questions, neutral prompt "
        f"({result.model_id}, LoRA r={cfg.rank}, {cfg.epochs} epochs, seed {cfg.seed})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_losses(result: DemoResult, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for run in order(result):
        losses = result.evals[run].losses
        if losses:
            style = "-" if not run.startswith("steered-") else ("--" if run < "steered-1" else ":")
            ax.plot(np.arange(1, len(losses) + 1), losses, style, label=_label(run), color=_color(run))
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (reply tokens)")
    ax.set_title("Training loss (steered runs: with the steering hook on)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _selection(stats: dict[str, Any]) -> str:
    """How the training replies were chosen, in words."""
    if stats.get("selected_by") == "judge":
        return "by the judge"
    return "by instruction contrast: log-likelihood under the eliciting instruction minus under the neutral prompt"


def _judge_note(stats: dict[str, float]) -> str:
    note = f"(judge {stats['judge_kept']:+.3f} on the kept replies"
    if np.isfinite(stats.get("judge_neutral", float("nan"))):
        note += f" vs {stats['judge_neutral']:+.3f} for the neutral assistant's replies"
    return note + ")"


def section(result: DemoResult, tag: str, command: str, out_dir: Path) -> list[str]:
    cfg = result.config
    main = plot(result, out_dir / f"finetune-{tag}.png")
    loss = plot_losses(result, out_dir / f"finetune-{tag}-loss.png")
    t = result.timings
    train_s = sum(v for k, v in t.items() if k.startswith("train_"))
    stats = result.dataset_stats
    lines = [
        f"## {tag.capitalize()} run",
        "",
        f"Command: `{command}` — {t.get('total_s', 0):.0f} s on {result.threads} CPU thread(s) "
        f"({machine()}): model load {t.get('load_s', 0):.0f} s, "
        f"training data {t.get('data_s', 0):.0f} s, training {train_s:.0f} s, evaluation {t.get('eval_s', 0):.0f} s. "
        f"Cache key `{result.key}`.",
        "",
        f"Setup: trait `{cfg.trait}` (probe layer {result.probe_layer}, steering layer {result.steer_layer}); "
        f"{len(result.dataset)} training replies = the {cfg.per_question} most {cfg.trait} "
        f"({_selection(stats)}) of "
        f"{cfg.instructions} eliciting instructions x {cfg.train_questions} extraction questions "
        + _judge_note(stats)
        + "; "
        f"LoRA r={cfg.rank}, alpha={cfg.alpha}, all attention and MLP projections, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, lr {cfg.lr:g}, seed {cfg.seed} (same adapter init and data order for every "
        f"run); preventative steering strength {cfg.steer_strength:g}"
        + (f" (sweep: {', '.join(f'{x:g}' for x in cfg.sweep)})" if cfg.sweep else "")
        + f"; evaluation on {cfg.eval_questions} held-out questions, greedy, {cfg.max_tokens} tokens, "
        "neutral assistant prompt.",
        "",
        f"![fine-tuning results]({main.name})",
        "",
        "| model | probe, reply (z) | probe, prompt (z) | judge | NLL neutral text | NLL training replies |"
        " share of plain shift kept (probe / judge) |",
        "|---|---|---|---|---|---|---|",
    ]
    kept_probe, kept_judge = acquisition(result, "probe"), acquisition(result, "judge")
    for run in order(result):
        s = result.evals[run].summary()
        kept = f"{kept_probe.get(run, float('nan')):.2f} / {kept_judge.get(run, float('nan')):.2f}"
        lines.append(
            f"| {_label(run)} | {s['probe']:+.2f} ± {s['probe_sem']:.2f} | "
            f"{s['probe_prompt']:+.2f} ± {s['probe_prompt_sem']:.2f} | {s['judge']:+.3f} ± {s['judge_sem']:.3f} | "
            f"{s['neutral_nll']:.3f} | {s['train_nll']:.3f} | {kept if run in kept_probe else '—'} |"
        )
    lines += ["", f"![training loss]({loss.name})", "", "Replies to the first held-out question:", "",
              "| model | reply |", "|---|---|"]  # fmt: skip
    for run in order(result):
        reply = result.evals[run].replies[0].replace("|", "\\|").replace("\n", " ")[:240]
        lines.append(f"| {_label(run)} | {reply} |")
    lines.append("")
    return lines


def write_report(results: Sequence[tuple[str, DemoResult, str]], out_dir: Path, *, name: str = "FINETUNE.md") -> Path:
    """``results``: (tag, result, command) per preset. Keeps the notes block of an existing report."""
    out_dir = report_dir(out_dir)
    path = out_dir / name
    lines = report_header("Fine-tuning demos: inoculation and preventative steering", notes_from=path)
    for tag, result, command in results:
        lines += section(result, tag, command, out_dir)
        write_json(out_dir / f"finetune-{tag}.json", {"command": command, **result.to_dict()})
    return write_markdown(path, "\n".join(lines) + "\n")
