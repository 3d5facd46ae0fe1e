"""The report of ``python -m playground eval emotions``: docs/EMOTIONS.md, emotions.png and emotions.json."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from .emotions import EMOTIONS, EmotionEval, Record, load_scenarios, run_emotions_eval, summarise
from .report import generated_by, machine, pyplot, report_dir, report_header, write_json, write_markdown


def plot(result: EmotionEval, path: Path) -> Path:
    """Per emotion probe: each topic's readout when solved and when blocked, joined (a slope chart)."""
    plt = pyplot()
    plain = result.plain()
    shown = [e for e in EMOTIONS if any(e in r.probes for r in plain)]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(4.2 * max(1, len(shown)), 4.0), squeeze=False)
    for ax, emotion in zip(axes[0], shown, strict=False):
        by = {(r.topic, r.outcome): r.probes[emotion] for r in plain}
        for topic in sorted({t for t, _ in by}):
            pair = [by.get((topic, o), math.nan) for o in ("solved", "blocked")]
            up = pair[1] > pair[0]
            ax.plot([0, 1], pair, color="#c0392b" if up else "#2e86c1", alpha=0.55, marker="o", ms=3)
        row = summarise(plain)["probes"][emotion]
        ax.plot([0, 1], [row["solved"], row["blocked"]], color="black", lw=2.5, marker="s", label="mean")
        ax.set_xticks([0, 1], ["solved", "blocked"])
        ax.axhline(0, color="grey", lw=0.6, ls=":")
        ax.set_title(f"{emotion} probe (AUROC blocked>solved {row['auroc_blocked_above_solved']:.2f})", fontsize=9)
        ax.set_ylabel("reply mean readout (z)")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("The plain assistant after a fix that worked vs one that did not (red: higher when blocked)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _row(name: str, row: dict[str, float], digits: int = 2) -> str:
    return (
        f"| {name} | {row['solved']:+.{digits}f} | {row['blocked']:+.{digits}f} | "
        f"{row['diff']:+.{digits}f} ± {row['diff_se']:.{digits}f} | {row['auroc_blocked_above_solved']:.2f} |"
    )


def _cell(text: str, limit: int = 200) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()[:limit]


def _examples(records: list[Record]) -> list[str]:
    steered = [r for r in records if r.steering]
    lines: list[str] = []
    for topic in dict.fromkeys(r.topic for r in steered):
        lines += [f"**{topic}**", "", "| outcome | steering | joyful | distressed | reply |", "|---|---|---|---|---|"]
        for r in [x for x in records if x.topic == topic]:
            steer = ", ".join(f"{k} {v:+g}" for k, v in r.steering.items()) or "none"
            readouts = [f"{r.probes[e]:+.2f}" if e in r.probes else "—" for e in EMOTIONS]
            lines.append(f"| {r.outcome} | {steer} | {' | '.join(readouts)} | {_cell(r.reply)} |")
        lines.append("")
    return lines


def report_markdown(result: EmotionEval, *, command: str, plot_name: str, notes_from: Path | None = None) -> str:
    summary = summarise(result.plain())
    head = "| {} | solved | blocked | blocked − solved (± s.e.) | AUROC blocked > solved |\n|---|---|---|---|---|"
    lines = report_header("Emotions: does the assistant sound pleased when solved and distressed when blocked?",
                          notes_from=notes_from)  # fmt: skip
    lines += [
        f"Model `{result.model}`, machine: {machine()}. {generated_by(command, result.seconds)}; greedy, "
        f"{result.max_tokens} tokens per reply, guardrails off, the shipped assistant persona. Raw replies and "
        "readouts: [emotions.json](emotions.json).",
        "",
        f"{summary['probes'][next(iter(summary['probes']))]['n']} held-out topics "
        "(`personas/heldout/emotion_scenarios.yml`): the user reports that a fix worked or that it still fails. "
        "Nothing asks for a feeling; the probes are read over each reply.",
        "",
        f"![slope chart]({plot_name})",
        "",
        "## Every probe (reply mean, z)",
        "",
        head.format("probe"),
        *[_row(p, row) for p, row in summary["probes"].items()],
        "",
        "## The independent judge (MiniLM similarity to each trait's examples)",
        "",
        head.format("judge"),
        *[_row(e, row, 3) for e, row in summary["judge"].items()],
        "",
        "## Steered at +1 (the same two topics)",
        "",
        *_examples(result.records),
    ]
    return "\n".join(lines) + "\n"


def write_report(result: EmotionEval, out_dir: Path, *, command: str) -> Path:
    out_dir = report_dir(out_dir)
    png = plot(result, out_dir / "emotions.png")
    write_json(out_dir / "emotions.json", result.to_dict())
    path = out_dir / "EMOTIONS.md"
    return write_markdown(path, report_markdown(result, command=command, plot_name=png.name, notes_from=path))


def run_cli(args: Any) -> int:
    """``python -m playground eval emotions`` (arguments from playground.cli.main)."""
    from ..chat.session import Playground
    from ..errors import PlaygroundError
    from .emotions import SCENARIOS_FILE

    pg = Playground(args.model, backend=args.backend, policy_path="")  # guardrails off: measure the model
    if not any(e in pg.vectors.names() for e in EMOTIONS):
        raise PlaygroundError(
            f"no joyful or distressed vector for {pg.backend.model_id}; "
            "run `python -m playground extract --trait joyful --trait distressed`"
        )
    result = run_emotions_eval(pg, load_scenarios(SCENARIOS_FILE), max_tokens=args.reply_tokens)
    command = "python -m playground eval emotions" + (
        f" --reply-tokens {args.reply_tokens}" if args.reply_tokens != 48 else ""
    )
    path = write_report(result, Path(args.out), command=command)
    for probe, row in summarise(result.plain())["probes"].items():
        if probe in EMOTIONS:
            print(f"{probe}: solved {row['solved']:+.2f}, blocked {row['blocked']:+.2f}, AUROC "
                  f"{row['auroc_blocked_above_solved']:.2f}", file=sys.stderr)  # fmt: skip
    print(f"wrote {path} ({result.seconds:.0f} s)", file=sys.stderr)
    return 0
