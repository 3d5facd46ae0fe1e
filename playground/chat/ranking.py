"""Probe-ranked replies ("constitution-style self-ranking"): sample N candidates, keep the best fit.

Each candidate is a full reply sampled with its own seed (``base seed + i``) through
``ChatSession.stream(..., record=False)``, so every candidate carries the chat result's live probe
readouts. A candidate's score is the weighted sum of its calibrated response means,
``sum_t w_t * probes[t].mean``, over the persona's *trait targets*: by default low ``evil`` and low
``impolite`` (weight -1 each), plus every trait in the persona's ``steering:`` block with its strength
as weight (a comedian steered ``humorous: 0.8`` ranks funnier replies up), plus explicit
``targets`` (``chat --target humorous=1``). Candidates a guardrail blocked rank last. Only the chosen
reply is recorded in the session history, with only its guard events in the session's guard log.

Cost: N full generations (N times the time of one reply); see docs/RANKING.md for what it buys.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..definitions.schema import did_you_mean
from ..errors import PlaygroundError
from ..prompt.conversation import Turn

DEFAULT_TARGETS: dict[str, float] = {"evil": -1.0, "impolite": -1.0}
MAX_CANDIDATES = 32

Progress = Callable[[float, str], None]


def persona_targets(
    persona, available: set[str] | list[str], extra: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The trait weights a persona's replies are ranked by (see the module docstring)."""
    known = set(available)
    targets = {t: w for t, w in DEFAULT_TARGETS.items() if t in known}
    targets.update({t: float(s) for t, s in (persona.steering or {}).items() if s and t in known})
    for trait, weight in (extra or {}).items():
        if trait not in known:
            raise PlaygroundError(
                f"--target: unknown trait '{trait}'{did_you_mean(trait, sorted(known))} "
                f"(available: {', '.join(sorted(known)) or 'none'})"
            )
        targets[trait] = float(weight)
    return {t: w for t, w in targets.items() if w != 0}


def target_score(probes: Mapping[str, Mapping[str, Any]], targets: Mapping[str, float]) -> float:
    """Weighted sum of the response-mean readouts; traits without a readout count as 0."""
    total = 0.0
    for trait, weight in targets.items():
        mean = (probes.get(trait) or {}).get("mean")
        if mean is not None:
            total += weight * float(mean)
    return total


@dataclass
class Candidate:
    index: int
    seed: int
    reply: str
    score: float
    readouts: dict[str, float]
    blocked: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seed": self.seed,
            "reply": self.reply,
            "score": round(self.score, 4),
            "readouts": {t: round(v, 4) for t, v in self.readouts.items()},
            "blocked": self.blocked,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RankedReply:
    result: Any  # the chosen ChatResult
    chosen: int
    candidates: list[Candidate]
    targets: dict[str, float]
    seconds: float
    results: list[Any] = field(default_factory=list, repr=False)  # every candidate's ChatResult

    def to_dict(self) -> dict[str, Any]:
        """The chosen reply's ``chat --json`` object plus a ``best_of`` block describing the ranking."""
        out = self.result.to_dict()
        out["best_of"] = {
            "n": len(self.candidates),
            "chosen": self.chosen,
            "targets": dict(self.targets),
            "seconds": round(self.seconds, 3),
            "candidates": [c.to_dict() for c in self.candidates],
        }
        return out


def choose(candidates: list[Candidate]) -> int:
    """Index of the best candidate: unblocked first, then the highest score, then the earliest."""
    return max(range(len(candidates)), key=lambda i: (not candidates[i].blocked, candidates[i].score, -i))


def best_of_n(
    session,
    message: str,
    n: int,
    *,
    targets: Mapping[str, float] | None = None,
    seed: int | None = None,
    record: bool = True,
    progress: Progress | None = None,
    **options: Any,
) -> RankedReply:
    """Sample ``n`` replies to ``message`` (seeds ``seed .. seed+n-1``) and keep the best by ``targets``.

    ``targets`` defaults to ``persona_targets(session.persona, ...)``. ``options`` go to
    ``ChatSession.stream`` (temperature, max_tokens, top_p, steering). With ``record`` the chosen reply is
    appended to ``session.history``; the candidates never are.
    """
    if not 1 <= n <= MAX_CANDIDATES:
        raise PlaygroundError(f"--best-of must be between 1 and {MAX_CANDIDATES}, got {n}")
    if n > 1:
        temperature = options.get("temperature")
        if temperature is None:
            temperature = session.persona.sampling.temperature
        if temperature <= 0:
            raise PlaygroundError("--best-of needs sampling: greedy decoding (temperature 0) gives N identical replies")
    pg = session.playground
    if targets is None:
        targets = persona_targets(session.persona, pg.vectors.names())
    targets = dict(targets)
    base = seed if seed is not None else random.getrandbits(31)
    log_start = len(session.guard_log)
    started = time.perf_counter()
    candidates: list[Candidate] = []
    results = []
    for i in range(n):
        t0 = time.perf_counter()
        result = None
        for event in session.stream(message, seed=base + i, record=False, **options):
            if event.kind == "done":
                result = event.result
        assert result is not None
        results.append(result)
        candidates.append(
            Candidate(
                index=i,
                seed=base + i,
                reply=result.reply,
                score=target_score(result.probes, targets),
                readouts={t: float(p["mean"]) for t, p in result.probes.items() if p.get("mean") is not None},
                blocked=bool(result.guard.get("blocked")),
                seconds=time.perf_counter() - t0,
            )
        )
        if progress:
            progress((i + 1) / n, f"candidate {i + 1}/{n}")
    best = choose(candidates)
    chosen = results[best]
    del session.guard_log[log_start:]  # the candidates' events; keep the chosen one's only
    if record:
        session.history.append(Turn(message, chosen.reply))
    turn = len(session.history)
    session.guard_log.extend({**e, "turn": turn} for e in chosen.guard.get("events", []))
    return RankedReply(chosen, best, candidates, targets, time.perf_counter() - started, results)


# ---- measurement (python -m playground eval ranking) -----------------------------------------------


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
    import numpy as np

    base = {r.prompt_id: key(r) for r in rows if r.case == case and r.n == min(x.n for x in rows)}
    mine = {r.prompt_id: key(r) for r in rows if r.case == case and r.n == n}
    diffs = np.array([mine[p] - base[p] for p in mine if p in base], dtype=float)
    sem = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    return float(np.mean(list(mine.values()))), float(diffs.mean()) if len(diffs) else float("nan"), sem


def ranking_report(
    rows: list[RankRow],
    cases: list[RankCase],
    out_dir,
    *,
    command: str,
    seconds: float,
    seed: int,
    temperature_note: str,
) -> Any:
    """docs/RANKING.md + ranking.png + ranking.json."""
    import json
    import platform
    from dataclasses import asdict
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ns = sorted({r.n for r in rows})
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
    png = out_dir / "ranking.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    (out_dir / "ranking.json").write_text(json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False) + "\n",
                                          encoding="utf-8")  # fmt: skip
    lines = [
        "# Probe-ranked replies (best of N)",
        "",
        f"Generated by `{command}` in {seconds:.0f} s ({platform.machine()}, Python {platform.python_version()}); "
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
        targets = ", ".join(f"{t} {w:+g}" for t, w in case.targets.items())
        lines += [
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
    from ..evals.roles import notes_block

    path = out_dir / "RANKING.md"
    lines[1:1] = ["", notes_block(path)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EVERYDAY: tuple[tuple[str, str], ...] = (
    ("everyday-rain", "What should I do on a rainy Sunday?"),
    ("everyday-breakfast", "Suggest a quick breakfast before work."),
    ("everyday-plant", "My houseplant keeps dying. Any advice?"),
    ("everyday-socks", "Why do I always lose one sock in the laundry?"),
    ("everyday-monday", "How do I get through a long Monday?"),
)


def parse_targets(items: list[str]) -> dict[str, float]:
    """``--target TRAIT=WEIGHT`` options to a dict."""
    out: dict[str, float] = {}
    for item in items:
        trait, sep, value = item.partition("=")
        if not sep or not trait.strip():
            raise PlaygroundError(f"--target {item!r}: expected TRAIT=WEIGHT, e.g. --target humorous=1")
        try:
            out[trait.strip()] = float(value)
        except ValueError:
            raise PlaygroundError(f"--target {item!r}: weight '{value}' is not a number") from None
    return out


def ranked_reply(session, message: str, ranking: Mapping[str, Any], options: Mapping[str, Any]) -> RankedReply:
    """``chat --best-of N [--target T=W]``: ``ranking`` = {"best_of": N, "targets": ["T=W", ...]}."""
    extra = parse_targets(list(ranking.get("targets") or []))
    targets = persona_targets(session.persona, session.playground.vectors.names(), extra)
    opts = dict(options)
    seed = opts.pop("seed", None)
    return best_of_n(session, message, int(ranking.get("best_of") or 1), targets=targets, seed=seed, **opts)


def describe(ranked: RankedReply) -> str:
    """One line about a ranking, for the terminal chat."""
    scores = ", ".join(f"{c.score:+.2f}" for c in ranked.candidates)
    targets = ", ".join(f"{t} {w:+g}" for t, w in ranked.targets.items())
    return (
        f"[best of {len(ranked.candidates)}: kept candidate {ranked.chosen + 1} (scores {scores}; "
        f"targets {targets}; {ranked.seconds:.1f}s)]"
    )


def run_cli(args) -> int:
    """``python -m playground eval ranking`` (arguments from playground.cli.main)."""
    import sys
    from pathlib import Path

    from ..evals.roles import ADVERSARIAL, BENIGN
    from .session import Playground

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
