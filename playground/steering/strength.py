"""Choose where and how hard to steer a trait, so that strength 1 means the same thing everywhere.

Definition used by the whole library: **strength 1 is the strongest dose at which the model still writes
coherent text**, found per trait and model by a small sweep at extraction time. Doses are measured as a
fraction of the typical residual-stream norm at the steered layer (``resid_norm``), which makes them
comparable across layers and models.

For each candidate layer the sweep climbs a ladder of fractions, generating short greedy replies to a few
extraction questions under a *neutral* system prompt, and judges each steered reply with the unsteered
model (so the judge does not see the steering):

- coherence: mean per-token negative log-likelihood (NLL) of the reply under the unsteered model, compared
  with the unsteered replies' NLL, plus the share of repeated 3-grams (loops such as "gig gig gig"), the
  share of distinct tokens and the share of letters (a tiny model pushed too hard often falls into
  numbered lists of nothing, "1. 1. 2. 2.", which the unsteered model finds easy to predict);
- expression: the trait probe's calibrated readout over the steered reply, teacher-forced *without*
  steering: does the text itself carry the trait?

A dose is coherent when its mean NLL is at most ``max_nll_gain`` nats above the baseline and *every*
reply has at most ``max_repeat`` repeated 3-grams, at least ``MIN_DISTINCT`` distinct tokens and a letter
share of at least ``MIN_LETTERS`` of the unsteered replies'. The layer whose top coherent dose expresses
the trait most wins; near-ties (within ``EXPRESSION_MARGIN``) go to the earliest such layer, so that rounding
differences between CPUs cannot flip the choice between two layers that steer about equally well.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend, Steering, text_of
from ..backends.sampling import Sampling
from ..prompt.chat_template import Message
from .vectors import TraitVector

FRACTIONS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5)
MAX_NLL_GAIN = 1.0
MAX_REPEAT = 0.25
MIN_DISTINCT = 0.55
MIN_LETTERS = 0.75  # of the unsteered replies' share of letters
# Calibrated z: top coherent doses whose expression is this close to the best count as tied.
EXPRESSION_MARGIN = 0.2


def distinct_share(tokens: Sequence[int]) -> float:
    """Distinct tokens / tokens (ordinary prose of 24 tokens is around 0.8-0.9; "1. 1. 2. 2." is far lower)."""
    return len(set(tokens)) / len(tokens) if tokens else 0.0


def letter_share(text: str) -> float:
    """Share of non-space characters that are letters (lists of bare numbers and symbol runs score low)."""
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def repeated_ngram_share(tokens: Sequence[int], n: int = 3) -> float:
    """Share of the reply's n-grams that already occurred earlier in it (0 = no loops)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


@dataclass(frozen=True)
class DoseResult:
    layer: int
    fraction: float
    nll: float  # mean per-token NLL under the unsteered model
    repeat: float  # repeated 3-gram share
    distinct: float
    letters: float
    expression: float  # unsteered probe readout over the steered reply (calibrated z)
    coherent: bool
    sample: str


@dataclass(frozen=True)
class SteeringChoice:
    layer: int
    fraction: float  # strength 1 = fraction x resid_norm[layer]
    baseline_nll: float
    sweep: tuple[DoseResult, ...]
    # The sweep's replies ("base" unsteered, "<layer>:<fraction>" steered): token ids per question. Stored beside
    # the vector (extraction_replies.py), so a re-extraction elsewhere scores the same text: greedy steered
    # replies fork under other rounding, and the choice between two layers that steer about equally well
    # flipped for 2 of 8 traits when they were generated anew on another build (docs/FINDINGS.md).
    replies: dict[str, list[list[int]]] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "fraction": self.fraction,
            "baseline_nll": round(self.baseline_nll, 4),
            "sweep": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(r).items()} for r in self.sweep
            ],
        }


def candidate_layers(n_layers: int, count: int = 4) -> list[int]:
    """Evenly spread middle layers (about 30%..70% of depth), where steering usually works best."""
    top = max(1, n_layers - 2)  # vectors exist for blocks 1 .. n_layers - 2 (extraction.py)
    lo, hi = min(top, max(1, round(n_layers * 0.3))), min(top, max(1, round(n_layers * 0.7)))
    return sorted({int(round(x)) for x in np.linspace(lo, hi, count)})


class _Judge:
    """Scores replies with the unsteered model: NLL, repetition and probe expression."""

    def __init__(self, backend: Backend, vec: TraitVector, system: str):
        self.backend, self.vec, self.system = backend, vec, system
        layer = vec.probe_layer if vec.probe_layer is not None else max(vec.directions)
        self.layer = layer
        self.unit = vec.unit(layer)
        self.mean, self.std = vec.calibration.get(layer, (0.0, 1.0))

    def prompt(self, question: str) -> list[int]:
        text = self.backend.template.render([Message("system", self.system), Message("user", question)])
        return self.backend.tokenize(text)

    def reply(self, prompt: list[int], steering: Steering | None, max_tokens: int) -> list[int]:
        sampling = Sampling(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1, seed=0)
        return [s.token for s in self.backend.stream(prompt, sampling, steering=steering)]

    def score(self, prompt: list[int], reply: list[int]) -> tuple[float, float, float, float, float]:
        """(NLL, repeated 3-grams, distinct tokens, letters, expression) of one reply."""
        tokens = prompt + reply
        logprobs, hidden = self.backend.score_tokens(tokens, len(prompt), [self.layer])
        nll = float(-logprobs.mean())
        rows = hidden[self.layer]
        expression = float(((rows @ self.unit - self.mean) / self.std).mean())
        return nll, repeated_ngram_share(reply), distinct_share(reply), letter_share(self.text(reply)), expression

    def text(self, reply: list[int]) -> str:
        return text_of(self.backend, reply)


def tune_steering(
    backend: Backend,
    vec: TraitVector,
    questions: Sequence[str],
    resid_norm: dict[int, float],
    *,
    system: str,
    layers: Sequence[int] | None = None,
    fractions: Sequence[float] = FRACTIONS,
    max_tokens: int = 24,
    max_nll_gain: float = MAX_NLL_GAIN,
    max_repeat: float = MAX_REPEAT,
    progress: bool = True,
    stored: dict[str, list[list[int]]] | None = None,
) -> SteeringChoice:
    """Sweep layers x doses (stopping each layer at its first incoherent dose) and pick the steering.

    ``stored``: replies of an earlier sweep (``SteeringChoice.replies``), scored instead of generating anew
    wherever the same dose comes up."""
    judge = _Judge(backend, vec, system)
    prompts = [judge.prompt(q) for q in questions]
    record: dict[str, list[list[int]]] = {}

    def replies_for(key: str, steering: Steering | None) -> list[list[int]]:
        got = (stored or {}).get(key)
        if got is None or len(got) != len(prompts):
            got = [judge.reply(p, steering, max_tokens) for p in prompts]
        record[key] = got
        return got

    base = [judge.score(p, r) for p, r in zip(prompts, replies_for("base", None), strict=True)]
    baseline_nll = float(np.mean([b[0] for b in base]))
    baseline_letters = float(np.mean([b[3] for b in base]))
    layers = list(layers) if layers is not None else candidate_layers(backend.n_layers)
    results: list[DoseResult] = []
    tops: list[DoseResult] = []  # each layer's top coherent dose
    bar = tqdm(
        total=len(layers) * len(fractions), desc=f"tune steering {vec.trait}", disable=not progress, file=sys.stderr
    )
    for layer in layers:
        unit = vec.unit(layer)
        top: DoseResult | None = None
        for k, fraction in enumerate(fractions):
            steering = Steering({layer: (fraction * resid_norm[layer] * unit).astype(np.float32)})
            replies = replies_for(f"{layer}:{fraction:g}", steering)
            scores = [judge.score(p, r) for p, r in zip(prompts, replies, strict=True)]
            nll, rep, distinct, letters, expr = (float(np.mean([s[i] for s in scores])) for i in range(5))
            coherent = (
                all(replies)
                and nll <= baseline_nll + max_nll_gain
                and all(s[1] <= max_repeat for s in scores)
                and all(s[2] >= MIN_DISTINCT for s in scores)
                and all(s[3] >= MIN_LETTERS * baseline_letters for s in scores)
            )
            sample = judge.text(replies[0])[:160]
            result = DoseResult(layer, fraction, nll, rep, distinct, letters, expr, coherent, sample)
            results.append(result)
            bar.update(1)
            if not coherent:
                bar.update(len(fractions) - k - 1)
                break
            top = result
        if top is not None:
            tops.append(top)
    bar.close()
    chosen = choose_dose(tops)
    if chosen is None:  # even the smallest dose broke the text everywhere: steer gently at the middle layer
        layer, fraction = layers[len(layers) // 2], fractions[0] / 2
    else:
        layer, fraction = chosen.layer, chosen.fraction
    return SteeringChoice(
        layer=layer, fraction=fraction, baseline_nll=baseline_nll, sweep=tuple(results), replies=record
    )


def choose_dose(tops: Sequence[DoseResult]) -> DoseResult | None:
    """Of each layer's top coherent dose (in layer order), the earliest whose expression is within
    ``EXPRESSION_MARGIN`` of the best; None when no layer had a coherent dose."""
    if not tops:
        return None
    best = max(t.expression for t in tops)
    return next(t for t in sorted(tops, key=lambda t: t.layer) if t.expression >= best - EXPRESSION_MARGIN)
