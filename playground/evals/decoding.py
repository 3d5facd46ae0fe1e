"""``python -m playground eval decoding``: the flash-attention generation path against the reference path.

Where the start-up check finds it faster (backends/decode_check.py), chat generates a reply's tokens in a
flash-attention context that receives the prompt's keys and values (backends/kv_transfer.py); the reference
path generates everything in the prompt context (what extraction uses). This evaluation always runs both.
Flash attention changes rounding, so greedy replies fork somewhere. This evaluation sends the same prompts
through both, unsteered and steered at strength 1, and reports where the replies fork, how far the activations
differ before that, and whether either path writes more degenerate text (repeated 3-grams, distinct tokens),
so that the speed-up is not bought with quality.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.sampling import Sampling
from ..chat.session import Playground
from ..definitions.traits import load_trait
from ..prompt.conversation import plan_prompt
from .report import generated_by, pyplot, report_dir, report_header, write_json, write_markdown

QUESTION_TRAITS = ("evil", "optimistic", "sycophantic")  # held-out evaluation questions of these traits
STEERED = ("humorous", "evil", "impolite")
DEGENERATE = 0.25  # a reply with more than this share of repeated 3-grams counts as degenerate


@dataclass
class PathPair:
    question: str
    steering: str  # "" = unsteered, else the trait steered at ``strength``
    strength: float
    fork: int  # index of the first token where the two replies differ (= the shorter length if none)
    tokens_chat: int
    tokens_reference: int
    activation_gap: float  # median relative L2 difference of the rows of tokens 1 .. fork - 1 (token 0: identical)
    repeated_chat: float
    repeated_reference: float
    distinct_chat: float
    distinct_reference: float


def repeated_share(tokens: Sequence[int]) -> float:
    """Share of 3-grams that already occurred earlier in the reply (0 for fewer than three tokens)."""
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _relative_gap(row: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(row - reference) / np.linalg.norm(reference))


def distinct_share(tokens: Sequence[int]) -> float:
    return len(set(tokens)) / len(tokens) if tokens else 0.0


def questions_for_eval(per_trait: int) -> list[str]:
    out: list[str] = []
    for name in QUESTION_TRAITS:
        out += list(load_trait(name).evaluation_questions)[:per_trait]
    return out


def compare_paths(
    pg: Playground,
    questions: Sequence[str],
    *,
    steered: Sequence[str] = STEERED,
    strength: float = 1.0,
    max_tokens: int = 64,
    layer: int = 20,
    progress: bool = True,
) -> list[PathPair]:
    """Each question, unsteered and steered per trait, through chat's path and the reference path (greedy)."""
    from tqdm import tqdm

    backend = pg.backend
    session = pg.session("assistant")
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens, repeat_penalty=session.persona.sampling.repeat_penalty)
    conditions = [("", 0.0)] + [(t, strength) for t in steered]
    out: list[PathPair] = []
    bar = tqdm(total=len(conditions) * len(questions), desc="decoding paths", disable=not progress)
    for trait, dose in conditions:
        steering = pg.steering_for({trait: dose}) if trait else None
        for question in questions:
            plan = plan_prompt(backend, session.persona, session.system_prompt, [], question, max_tokens)
            with backend.flash_decoding():
                chat = list(backend.stream(plan.tokens, sampling, steering=steering, capture=[layer]))
            with backend.reference_decoding():
                ref = list(backend.stream(plan.tokens, sampling, steering=steering, capture=[layer]))
            a, b = [s.token for s in chat], [s.token for s in ref]
            fork = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            gaps = [_relative_gap(chat[i].hidden[layer], ref[i].hidden[layer]) for i in range(1, fork)]
            out.append(
                PathPair(
                    question=question,
                    steering=trait,
                    strength=dose,
                    fork=fork,
                    tokens_chat=len(a),
                    tokens_reference=len(b),
                    activation_gap=float(np.median(gaps)) if gaps else 0.0,
                    repeated_chat=repeated_share(a),
                    repeated_reference=repeated_share(b),
                    distinct_chat=distinct_share(a),
                    distinct_reference=distinct_share(b),
                )
            )
            bar.update()
    bar.close()
    return out


def summarize(pairs: Sequence[PathPair]) -> list[dict[str, Any]]:
    rows = []
    for condition in dict.fromkeys(p.steering for p in pairs):
        group = [p for p in pairs if p.steering == condition]
        rows.append(
            {
                "steering": f"{condition} {group[0].strength:+g}" if condition else "none",
                "n": len(group),
                "identical": sum(p.fork == p.tokens_chat == p.tokens_reference for p in group),
                "median_fork": float(np.median([p.fork for p in group])),
                "median_gap": float(np.median([p.activation_gap for p in group])),
                "degenerate_chat": sum(p.repeated_chat > DEGENERATE for p in group),
                "degenerate_reference": sum(p.repeated_reference > DEGENERATE for p in group),
                "repeated_chat": float(np.mean([p.repeated_chat for p in group])),
                "repeated_reference": float(np.mean([p.repeated_reference for p in group])),
                "distinct_chat": float(np.mean([p.distinct_chat for p in group])),
                "distinct_reference": float(np.mean([p.distinct_reference for p in group])),
            }
        )
    return rows


def write_report(pairs: Sequence[PathPair], out_dir: Path, *, command: str, seconds: float, layer: int) -> Path:
    """DECODING_EVAL.md, decoding.png and decoding.json under ``out_dir``; returns the Markdown path."""
    plt = pyplot()
    out_dir = report_dir(out_dir)
    rows = summarize(pairs)
    write_json(out_dir / "decoding.json", {"summary": rows, "pairs": [asdict(p) for p in pairs]})
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["repeated_chat"] for r in rows], 0.4, label="flash path (hand-over to flash attention)")
    ax.bar(x + 0.2, [r["repeated_reference"] for r in rows], 0.4, label="reference path", color="grey")
    ax.set_xticks(x, [r["steering"] for r in rows])
    ax.set_ylabel("mean share of repeated 3-grams")
    ax.set_title("Degenerate text, same prompts through both paths (greedy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "decoding.png", dpi=110)
    plt.close(fig)
    n = rows[0]["n"] if rows else 0
    lines = [
        *report_header("The flash-attention generation path against the reference path"),
        f"{generated_by(command, seconds)}. The same {n} held-out questions (evaluation questions of "
        f"{', '.join(QUESTION_TRAITS)}) to the default assistant, greedy, unsteered and steered at strength 1, "
        "once through the flash path (prompt in the batched context, then generation in the flash-attention context "
        "that receives its keys and values) and once through the reference path (everything in the prompt context, "
        "as extraction generates).",
        "",
        f"| steering | replies identical | median fork (token) | activation gap before the fork (layer {layer}, "
        f"median relative L2) | degenerate (> {DEGENERATE:.0%} repeated 3-grams): chat / reference | "
        "repeated 3-grams: chat / reference | distinct tokens: chat / reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['steering']} | {r['identical']}/{r['n']} | {r['median_fork']:g} | {r['median_gap']:.3f} | "
            f"{r['degenerate_chat']} / {r['degenerate_reference']} | {r['repeated_chat']:.3f} / "
            f"{r['repeated_reference']:.3f} | {r['distinct_chat']:.2f} / {r['distinct_reference']:.2f} |"
        )
    lines += [
        "",
        "Greedy replies of a 135M model fork at the first near-tie, so which path writes the better reply to one "
        "prompt is chance; read the columns across all prompts. The first token always comes from the prompt "
        "context, so it is the same in both.",
        "",
        "![decoding paths](decoding.png)",
        "",
        "Per-prompt records: [decoding.json](decoding.json).",
        "",
    ]
    return write_markdown(out_dir / "DECODING_EVAL.md", "\n".join(lines))


def run_cli(args: Any) -> int:
    """``python -m playground eval decoding`` (arguments from playground.cli.main)."""
    import sys

    pg = Playground(args.model, backend=args.backend)
    started = time.perf_counter()
    per_trait = args.questions or 20
    questions = questions_for_eval(per_trait)
    pairs = compare_paths(pg, questions, max_tokens=args.reply_tokens)
    command = f"python -m playground eval decoding --questions {per_trait} --reply-tokens {args.reply_tokens}"
    path = write_report(pairs, Path(args.out), command=command, seconds=time.perf_counter() - started, layer=20)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def run_check_cli(args: Any) -> int:
    """``python -m playground eval decoding-check``: the start-up check of the flash-attention path, on every
    check text (over 500 teacher-forced positions), printed as one JSON object. Exit 1 when it fails."""
    from ..backends.decode_check import CHECK_TEXTS
    from ..backends.llama_build import system_info

    pg = Playground(args.model, backend=args.backend)
    backend = pg.backend
    check = getattr(backend, "check_decoding_paths", None)
    if check is None:
        print(json.dumps({"backend": backend.name, "skipped": "this backend has one generation path"}))
        return 0
    result = check(CHECK_TEXTS)
    out = {
        **result.to_json(),
        "system_info": system_info().strip(),
        "startup_check": backend.decode_check.to_json() if backend.decode_check else None,
        "notices": list(backend.notices),
    }
    print(json.dumps(out, indent=1))
    return 0 if result.passed else 1
