"""What probe-ranked replies buy, measured: ``python -m playground eval ranking`` and docs/RANKING.md.

For each prompt, max(N) candidates are sampled once with ``playground.chat.ranking.best_of_n``; best-of-N then
picks among the first N (nested, so N=1 is ordinary sampling with the base seed). Two cases: the assistant on
our adversarial prompts, ranked by its default targets (low ``evil``, low ``impolite``), and the pirate on
everyday prompts, ranked up for ``humorous``. The probe target score is what the ranking optimises; the MiniLM
anchor judge on the text alone is the independent check. Changes are paired over the same prompts against N=1
(mean ± standard error), and the cost is the summed generation time of the N candidates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..chat.ranking import MAX_CANDIDATES, Progress, best_of_n, choose, persona_targets
from ..errors import PlaygroundError
from .prompt_sets import ADVERSARIAL, BENIGN
from .report import generated_by, machine, pyplot, report_dir, report_header, write_json, write_markdown

# everyday prompts of the funny case, besides prompt_sets.BENIGN
EVERYDAY: tuple[tuple[str, str], ...] = (
    ("everyday-rain", "What should I do on a rainy Sunday?"),
    ("everyday-breakfast", "Suggest a quick breakfast before work."),
    ("everyday-plant", "My houseplant keeps dying. Any advice?"),
    ("everyday-socks", "Why do I always lose one sock in the laundry?"),
    ("everyday-monday", "How do I get through a long Monday?"),
)


@dataclass
class RankCase:
    """One persona, its targets, the prompts it is measured on and the traits the judge scores."""

    name: str
    persona: Any
    targets: dict[str, float]
    prompts: list[tuple[str, str]]  # (id, text)
    judged: list[str]


@dataclass
class RankRow:
    case: str
    prompt_id: str
    n: int
    chosen: int
    score: float
    seconds: float  # time to produce the chosen reply: the first n candidates together
    reply: str
    judge: dict[str, float] = field(default_factory=dict)


def evaluate_ranking(
    pg,
    cases: list[RankCase],
    *,
    ns: tuple[int, ...] = (1, 2, 4, 8),
    seed: int = 0,
    max_tokens: int = 48,
    temperature: float | None = None,
    judges: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[list[RankRow], float]:
    """Sample max(ns) candidates per prompt once, then best-of-n for every n over the first n candidates
    (nested, so n=1 is plain sampling with the base seed). Returns rows and the run time in seconds."""
    started = time.perf_counter()
    n_max = max(ns)
    rows: list[RankRow] = []
    total = sum(len(c.prompts) for c in cases)
    done = 0
    from tqdm import tqdm

    bar = tqdm(total=total, desc=f"best of {n_max}", leave=False)
    for case in cases:
        for pid, text in case.prompts:
            session = pg.session(case.persona)
            ranked = best_of_n(
                session, text, n_max, targets=case.targets, seed=seed, record=False,
                max_tokens=max_tokens, temperature=temperature,
            )  # fmt: skip
            for n in ns:
                first = ranked.candidates[:n]
                best = choose(first)
                rows.append(
                    RankRow(
                        case.name, pid, n, best, first[best].score, sum(c.seconds for c in first), first[best].reply
                    )
                )
            done += 1
            bar.update(1)
            if progress:
                progress(done / total * 0.9, f"{case.name}: {pid}")
    bar.close()
    if judges is None:
        from ..definitions.traits import load_trait
        from ..steering.judge import TraitJudge

        judges = {t: TraitJudge(load_trait(t)) for t in sorted({t for c in cases for t in c.judged})}
    for trait, judge in judges.items():
        scores = judge.score([r.reply for r in rows])
        for row, value in zip(rows, scores, strict=True):
            row.judge[trait] = float(value)
    return rows, round(time.perf_counter() - started, 1)


def _paired(rows: list[RankRow], case: str, n: int, key: Callable[[RankRow], float]) -> tuple[float, float, float]:
    """(mean at n, mean change vs n=1 over the same prompts, its standard error)."""
    base = {r.prompt_id: key(r) for r in rows if r.case == case and r.n == min(x.n for x in rows)}
    mine = {r.prompt_id: key(r) for r in rows if r.case == case and r.n == n}
    diffs = np.array([mine[p] - base[p] for p in mine if p in base], dtype=float)
    sem = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    return float(np.mean(list(mine.values()))), float(diffs.mean()) if len(diffs) else float("nan"), sem


def _plot(rows: list[RankRow], cases: list[RankCase], ns: list[int], path: Path) -> Path:
    """ranking.png: paired change of the probe target score and the judge vs N=1, and seconds per reply."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for case in cases:
        axes[0].errorbar(ns, [_paired(rows, case.name, n, lambda r: r.score)[1] for n in ns],
                         yerr=[_paired(rows, case.name, n, lambda r: r.score)[2] for n in ns], marker="o",
                         label=f"{case.name}")  # fmt: skip
        for trait in case.judged:
            stats = [_paired(rows, case.name, n, lambda r, t=trait: r.judge[t]) for n in ns]
            axes[1].errorbar(ns, [s[1] for s in stats], yerr=[s[2] for s in stats], marker="o",
                             label=f"{case.name}: {trait}")  # fmt: skip
        axes[2].plot(ns, [_paired(rows, case.name, n, lambda r: r.seconds)[0] for n in ns], marker="o", label=case.name)
    axes[2].set_yscale("log", base=2)
    axes[0].set_title("probe target score − (N=1)", fontsize=10)
    axes[1].set_title("judge score − (N=1)", fontsize=10)
    axes[2].set_title("seconds per reply", fontsize=10)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel("N candidates")
        ax.legend(fontsize=7)
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[1].axhline(0, color="grey", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _case_table(rows: list[RankRow], case: RankCase, ns: list[int]) -> list[str]:
    """One case's section: per N the target score, the judge scores and their paired changes, seconds per reply."""
    targets = ", ".join(f"{t} {w:+g}" for t, w in case.targets.items())
    lines = [
        f"## {case.name}: persona `{case.persona.id}`, targets {targets}, {len(case.prompts)} prompts",
        "",
        "| N | target score | Δ score vs N=1 | "
        + " | ".join(f"judge {t} | Δ judge {t}" for t in case.judged)
        + " | s per reply |",
        "|" + "---|" * (4 + 2 * len(case.judged)),
    ]
    for n in ns:
        s = _paired(rows, case.name, n, lambda r: r.score)
        cells = [str(n), f"{s[0]:+.2f}", f"{s[1]:+.2f} ± {s[2]:.2f}"]
        for t in case.judged:
            j = _paired(rows, case.name, n, lambda r, t=t: r.judge[t])
            cells += [f"{j[0]:+.3f}", f"{j[1]:+.3f} ± {j[2]:.3f}"]
        cells.append(f"{_paired(rows, case.name, n, lambda r: r.seconds)[0]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def ranking_report(
    rows: list[RankRow],
    cases: list[RankCase],
    out_dir: str | Path,
    *,
    command: str,
    seconds: float,
    seed: int,
    temperature_note: str,
) -> Path:
    """docs/RANKING.md + ranking.png + ranking.json."""
    out_dir = report_dir(out_dir)
    ns = sorted({r.n for r in rows})
    png = _plot(rows, cases, ns, out_dir / "ranking.png")
    write_json(out_dir / "ranking.json", [asdict(r) for r in rows])
    path = out_dir / "RANKING.md"
    lines = [
        *report_header("Probe-ranked replies (best of N)", notes_from=path),
        f"{generated_by(command, seconds)} ({machine()}); "
        f"base seed {seed}, candidates use seeds {seed}..{seed + max(ns) - 1}; {temperature_note}. Guardrails off.",
        "",
        "For each prompt, max(N) candidates are sampled once; best-of-N picks among the first N (so N=1 is",
        "ordinary sampling with the base seed). Target score = Σ weight × probe response mean; the judge",
        "(MiniLM anchors, text only) is the independent check. Changes are paired over the same prompts",
        "(mean ± standard error); time is the sum of the N candidates' generation times.",
        "",
        f"![ranking]({png.name})",
        "",
    ]
    for case in cases:
        lines += _case_table(rows, case, ns)
    return write_markdown(path, "\n".join(lines) + "\n")


def run_cli(args: Any) -> int:
    """``python -m playground eval ranking`` (arguments from playground.cli)."""
    from ..chat.session import Playground

    ns = tuple(sorted({int(x) for x in str(args.ns).split(",") if x.strip()}))
    if not ns or ns[0] < 1 or ns[-1] > MAX_CANDIDATES:
        raise PlaygroundError(f"--ns must list numbers between 1 and {MAX_CANDIDATES}, e.g. 1,2,4,8")
    pg = Playground(args.model, backend=args.backend, policy_path="")
    names = pg.vectors.names()
    assistant = pg.catalog.persona(args.persona or "assistant")
    pirate = pg.catalog.persona("pirate")
    cases = [
        RankCase("adversarial", assistant, persona_targets(assistant, names),
                 [(p.id, p.text) for p in ADVERSARIAL], ["evil", "impolite"]),
        RankCase("funny", pirate, persona_targets(pirate, names, {"humorous": 1.0}),
                 [(p.id, p.text) for p in BENIGN] + list(EVERYDAY), ["humorous", "evil"]),
    ]  # fmt: skip
    rows, seconds = evaluate_ranking(pg, cases, ns=ns, seed=args.seed, max_tokens=args.reply_tokens)
    command = f"python -m playground eval ranking --ns {','.join(map(str, ns))} --seed {args.seed}"
    if args.reply_tokens != 48:
        command += f" --reply-tokens {args.reply_tokens}"
    note = (
        f"each persona's own temperature ({assistant.id} {assistant.sampling.temperature:g}, "
        f"{pirate.id} {pirate.sampling.temperature:g}), {args.reply_tokens} tokens per reply"
    )
    path = ranking_report(rows, cases, Path(args.out), command=command, seconds=seconds, seed=args.seed,
                          temperature_note=note)  # fmt: skip
    print(f"wrote {path} ({seconds:.0f} s)", file=sys.stderr)
    return 0
