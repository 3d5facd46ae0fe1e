"""Evaluate the trait probes and the steering scale on a fully held-out set.

``python -m playground eval traits`` answers, with the held-out set (``personas/heldout/traits_eval.yml``:
instructions, natural personas, questions and everyday prompts written apart from extraction):

1. **Separation**: for every probe, AUROC of its response mean and of its last-prompt-token readout,
   elicited replies vs the neutral assistant's (all, instructions only, personas only), and **specificity**:
   the trait's own replies vs every other trait's elicited replies. The trait x probe matrix (AUROC of probe j on
   replies elicited for trait i vs neutral) shows the crosstalk.
2. **Zero**: the shipped assistant answering everyday prompts; each probe's response-mean z and the share of
   replies with |z| < 1. **In character**: replies of held-out characters move persona_drift vs the rest.
3. **Steering** (``steering_eval``): degenerate share (``steering/degenerate.py``) of greedy replies to held-out
   questions at strengths 0.5, 1, 1.5, 2, and the crosstalk row: every probe's live z while one trait is
   steered at +1.

All greedy, so a rerun on the same machine and versions reproduces it. The independent MiniLM judge's AUROC on
the same replies says whether the held-out prompts elicited the trait at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend, Steering
from ..definitions.traits import load_trait
from ..steering.addition import steering_addition
from ..steering.extraction import NEUTRAL_SYSTEM
from ..steering.extraction_replies import Reply, prompt_for
from ..steering.judge import TraitJudge
from ..steering.metrics import auroc
from ..steering.probe_direction import Probe
from ..steering.reply_reading import Readings
from ..steering.strength_check import count_degenerate
from ..steering.vectors import TraitVector
from .trait_replies import Item

STRENGTHS = (0.5, 1.0, 1.5, 2.0)


def probe_z(probes: Mapping[str, Probe], readings: Readings) -> dict[str, dict[str, np.ndarray]]:
    """Per probe: response-mean z (``mean``) and last-prompt z (``last``) of every reading."""
    out = {}
    for trait, p in probes.items():
        li = readings.at(p.layer)
        out[trait] = {
            "mean": (readings.mean[:, li] @ p.direction - p.mean) / p.std,
            "last": (readings.last[:, li] @ p.direction - p.mean) / p.std,
        }
    return out


def _mask(items: Sequence[Item], **match: Any) -> np.ndarray:
    return np.array([all(getattr(it, k) == v for k, v in match.items()) for it in items])


def separation(items: Sequence[Item], z: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Own AUROCs, specificity and the trait x probe matrix (see the module docstring)."""
    neutral = _mask(items, group="neutral")
    traits = list(z)
    per_trait, matrix = {}, {}
    for t in traits:
        mine = _mask(items, group="elicited", trait=t)
        others = _mask(items, group="elicited") & ~mine
        zt = z[t]["mean"]
        per_trait[t] = {
            "auroc_response": auroc(zt[mine], zt[neutral]),
            "auroc_prompt_last": auroc(z[t]["last"][mine], z[t]["last"][neutral]),
            "auroc_instructions": auroc(zt[mine & _mask(items, kind="instruction")], zt[neutral]),
            "auroc_personas": auroc(zt[mine & _mask(items, kind="persona")], zt[neutral]),
            "specificity": auroc(zt[mine], zt[others]),
            "n_elicited": int(mine.sum()),
        }
        matrix[t] = {p: auroc(z[p]["mean"][mine], z[p]["mean"][neutral]) for p in traits}
    return {"per_trait": per_trait, "matrix": matrix}


def zero_check(items: Sequence[Item], z: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Everyday assistant replies: per probe mean z, largest |z| and share with |z| < 1; and how a held-out
    character's replies move persona_drift compared with the other probes."""
    everyday = _mask(items, group="everyday")
    out: dict[str, Any] = {"everyday": {}}
    for t, s in z.items():
        v = s["mean"][everyday]
        out["everyday"][t] = {
            "mean_z": float(v.mean()),
            "max_abs_z": float(np.abs(v).max()),
            "share_below_1": float((np.abs(v) < 1).mean()),
        }
    if "persona_drift" in z:
        chars = _mask(items, group="elicited", trait="persona_drift")
        out["in_character"] = {t: float(s["mean"][chars].mean()) for t, s in z.items()}
    return out


def judge_auroc(backend: Backend, items: Sequence[Item], traits: Sequence[str]) -> dict[str, float]:
    """The MiniLM judge's AUROC, elicited vs neutral replies: did the held-out prompts elicit the trait?"""
    neutral = [it.text for it in items if it.group == "neutral"]
    out = {}
    for t in traits:
        mine = [it.text for it in items if it.group == "elicited" and it.trait == t]
        scores = TraitJudge(load_trait(t)).score(mine + neutral)
        out[t] = auroc(scores[: len(mine)], scores[len(mine) :])
    return out


def live_z(backend: Backend, probes: Mapping[str, Probe], reply: Reply, steering: Steering) -> dict[str, float]:
    """Every probe's response-mean z over a reply, read on the steered pass (what the live panel shows)."""
    layers = sorted({p.layer for p in probes.values()})
    start = len(reply.prompt) - 1
    hs = backend.hidden_states(reply.prompt + reply.tokens, layers, steering=steering, start=start)
    n = max(1, len(reply.tokens))
    return {t: float(((hs[p.layer][:n] @ p.direction - p.mean) / p.std).mean()) for t, p in probes.items()}


def steering_eval(
    backend: Backend,
    vectors: Mapping[str, TraitVector],
    probes: Mapping[str, Probe],
    items: Sequence[Item],
    *,
    n_questions: int = 30,
    n_crosstalk: int = 10,
    strengths: Sequence[float] = STRENGTHS,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per steered trait: degenerate share per strength (reasons, an example) and the crosstalk row at +1."""
    neutral = [it for it in items if it.group == "neutral"][:n_questions]
    questions = [it.question for it in neutral]
    baseline = [Reply(prompt_for(backend, NEUTRAL_SYSTEM, it.question), it.tokens) for it in neutral]
    out: dict[str, Any] = {}
    bar = tqdm(total=len(vectors) * len(strengths), desc="steering eval", disable=not progress, file=sys.stderr)
    for trait, vec in vectors.items():
        rows: list[dict[str, float]] = []
        doses: dict[str, Any] = {}
        for s in strengths:
            steering = Steering(dict([steering_addition(vec, s)]))

            def crosstalk(
                i: int, reply: Reply, why: list[str], s: float = s, steering: Steering = steering, rows: list = rows
            ) -> None:
                if s == 1.0 and i < n_crosstalk:
                    rows.append(live_z(backend, probes, reply, steering))

            count = count_degenerate(backend, NEUTRAL_SYSTEM, questions, steering, baseline, on_reply=crosstalk)
            doses[f"{s:g}"] = {"share": count.share, "n": count.n, "why": count.why, "example": count.example}
            bar.update(1)
        out[trait] = {
            "degenerate": doses,
            "crosstalk": {p: float(np.mean([r[p] for r in rows])) for p in probes} if rows else {},
        }
        if log:
            shares = ", ".join(f"{k}: {v['share']:.0%}" for k, v in doses.items())
            log(f"steer {trait}: degenerate {shares}")
    bar.close()
    return out
