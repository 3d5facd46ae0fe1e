"""Validate what "strength 1" means on many questions, so the scale keeps its promise.

The extraction sweep (``strength.py``) picks the steering layer and a first guess at strength 1 from a few short
replies. This check replaces the guess with a measured promise: **strength 1 is the strongest dose (on a ladder of
multiples of the guess) at which at most 5% of greedy replies to the validation questions
(``personas/calibration/reference.yml``, ``strength_questions``, 40 tokens each) are degenerate**
(``degenerate.py``). It climbs from the guess while doses pass and descends while they fail. A dose stops being
asked as soon as it has more degenerate replies than the 5% allows (its verdict cannot change), so failing doses
cost a few replies instead of all of them; their recorded share is over the replies asked (``asked``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..backends.base import Backend, Steering, text_of
from .addition import steering_addition
from .degenerate import reasons
from .extraction_replies import Reply, generate_reply
from .strength import letter_share
from .vectors import TraitVector

if TYPE_CHECKING:
    from .store import VectorStore

MAX_DEGENERATE = 0.05
MULTIPLES = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.45, 1.75)
MAX_TOKENS = 40


@dataclass
class DegenerateCount:
    """Degenerate replies among ``n`` at one dose, with the reasons and one example."""

    n: int = 0
    degenerate: int = 0
    why: dict[str, int] = field(default_factory=dict)
    example: str = ""

    @property
    def share(self) -> float:
        return self.degenerate / self.n if self.n else 0.0

    def add(self, why: list[str], text: str) -> None:
        self.n += 1
        if why:
            self.degenerate += 1
            self.example = self.example or text[:160]
            for w in why:
                self.why[w] = self.why.get(w, 0) + 1


def count_degenerate(
    backend: Backend,
    system: str,
    questions: Sequence[str],
    steering: Steering | None,
    baseline: Sequence[Reply],
    *,
    on_reply: Callable[[int, Reply, list[str]], None] | None = None,
    fail_above: int | None = None,
) -> DegenerateCount:
    """Generate a greedy reply per question under ``steering`` and count the degenerate ones; with
    ``fail_above``, stop once more than that many are degenerate (the dose has failed whatever comes next)."""
    count = DegenerateCount()
    for i, (q, base) in enumerate(zip(questions, baseline, strict=True)):
        reply = generate_reply(backend, system, q, MAX_TOKENS, steering=steering)
        text = text_of(backend, reply.tokens)
        why = reasons(reply.tokens, text, q, letter_share(text_of(backend, base.tokens)))
        count.add(why, text)
        if on_reply is not None:
            on_reply(i, reply, why)
        if fail_above is not None and count.degenerate > fail_above:
            break
    return count


def allowed_degenerate(n: int) -> int:
    """The most degenerate replies among ``n`` that a dose may have and pass (share <= MAX_DEGENERATE)."""
    return int(MAX_DEGENERATE * n + 1e-9)


@dataclass(frozen=True)
class ScaleCheck:
    trait: str
    layer: int
    old_scale: float  # raw residual units strength 1 meant before
    multiple: float  # new strength 1 = multiple x old
    shares: dict[float, float]  # multiple -> degenerate share (over the replies asked)
    n_questions: int
    asked: dict[float, int] = field(default_factory=dict)  # multiple -> replies asked (fewer once a dose failed)

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "old_scale": round(self.old_scale, 4),
            "multiple": self.multiple,
            "degenerate_share": {f"{k:g}": round(v, 4) for k, v in sorted(self.shares.items())},
            "n_questions": self.n_questions,
            "asked": {f"{k:g}": v for k, v in sorted(self.asked.items())},
            "rule": f"<= {MAX_DEGENERATE:.0%} degenerate (steering/degenerate.py)",
        }


def unsteered(backend: Backend, system: str, questions: Sequence[str]) -> list[Reply]:
    """The unsteered greedy replies the degenerate rule compares letter shares with (shared by every trait)."""
    return [generate_reply(backend, system, q, MAX_TOKENS) for q in questions]


def check_scale(
    backend: Backend,
    vec: TraitVector,
    questions: Sequence[str],
    system: str,
    *,
    baseline: Sequence[Reply] | None = None,
    progress: bool = True,
) -> ScaleCheck:
    """Find the strongest ladder multiple of the current strength 1 that keeps degenerate replies <= 5%."""
    layer, _ = steering_addition(vec, 1.0)
    baseline = list(baseline) if baseline is not None else unsteered(backend, system, questions)
    shares: dict[float, float] = {}
    asked: dict[float, int] = {}
    bar = tqdm(desc=f"strength scale {vec.trait}", unit="dose", disable=not progress, file=sys.stderr)
    allowed = allowed_degenerate(len(questions))

    def passes(k: int) -> bool:
        m = MULTIPLES[k]
        if m not in shares:
            steering = Steering(dict([steering_addition(vec, m)]))
            count = count_degenerate(backend, system, questions, steering, baseline, fail_above=allowed)
            shares[m], asked[m] = count.share, count.n
            bar.update(1)
        return asked[m] == len(questions) and shares[m] <= MAX_DEGENERATE

    k = MULTIPLES.index(1.0)
    if passes(k):
        while k + 1 < len(MULTIPLES) and passes(k + 1):
            k += 1
    else:
        while k > 0 and not passes(k - 1):
            k -= 1
        k = max(0, k - 1)
    bar.close()
    old = vec.steer_scale.get(layer, vec.norm(layer))
    return ScaleCheck(vec.trait, layer, old, MULTIPLES[k], shares, len(questions), asked)


def apply_scale(vec: TraitVector, check: ScaleCheck) -> None:
    """Rescale every layer's strength-1 dose by the validated multiple and record the check."""
    vec.steer_scale = {l: s * check.multiple for l, s in vec.steer_scale.items()}
    vec.extra["strength_check"] = check.to_json()


def validate_strengths(
    backend: Backend,
    store: VectorStore,
    names: Sequence[str],
    *,
    shipped: bool = False,
    log: Callable[[str], None] | None = None,
    questions: Sequence[str] | None = None,
) -> dict[str, ScaleCheck]:
    """Re-validate what strength 1 means for each trait in ``names`` on the reference questions (``questions``:
    others, e.g. a few for a test) and save the new scale into its vector (``calibrate``'s second half;
    ``prepare`` runs it too)."""
    from ..backends.compute_thread import run_on_compute_thread
    from .extraction import NEUTRAL_SYSTEM
    from .reference_data import load_reference

    questions = list(questions or load_reference().strength_questions)
    with backend.reference_decoding():
        baseline = run_on_compute_thread(lambda: unsteered(backend, NEUTRAL_SYSTEM, questions))
    checks = {}
    for name in names:
        vec = store.get(name)
        with backend.reference_decoding():
            check = run_on_compute_thread(
                lambda vec=vec: check_scale(backend, vec, questions, NEUTRAL_SYSTEM, baseline=baseline)
            )
        apply_scale(vec, check)
        store.save(vec, shipped=shipped)
        checks[name] = check
        if log:
            shares = ", ".join(f"x{k:g}: {v:.0%}" for k, v in sorted(check.shares.items()))
            log(f"{name}: strength 1 = x{check.multiple:g} of the old dose (degenerate share {shares})")
    return checks
