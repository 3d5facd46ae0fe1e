"""Fit every trait's live probe from the stored extraction replies, the wider probe-training replies and the
neutral reference (``probe_fit.py``).

Reads each trait's stored replies (``<trait>.replies.json``: eliciting, suppressing and neutral reply per
extraction question); generates (or re-reads) each trait's replies under the many instructions and natural
characters of ``personas/calibration/probe_training.yml`` (stored as ``probe_training.json``), and the neutral
assistant's replies to the everyday reference prompts (``personas/calibration/reference.yml``) under the plain
assistant instruction and the shipped assistant persona's (``probe_reference.json``); reads them all at every
readable layer, fits the probes jointly and calibrates each on the neutral replies' per-token readouts.
``python -m playground calibrate`` runs it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend
from ..backends.compute_thread import run_on_compute_thread
from ..definitions.personas import Catalog
from ..definitions.traits import load_trait
from ..errors import PlaygroundError
from ..files import write_atomic
from .extraction import NEUTRAL_SYSTEM
from .extraction_replies import generate_reply, prompt_for
from .probe_direction import Probe
from .probe_fit import CV_FOLDS, DEFAULT_METHOD, ProbeData, ProbeFit, calibrate, fit_probes
from .reference_data import ReferencePrompts, load_probe_training, load_reference
from .reply_reading import Readings, read_replies
from .store import VectorStore

REFERENCE_MAX_TOKENS = 40
REFERENCE_FILE_NAME = "probe_reference.json"
WIDER_FILE_NAME = "probe_training.json"
PER_SYSTEM = 2  # questions each probe_training.yml system answers


def reference_systems() -> tuple[str, ...]:
    """The neutral assistants the reference is read from: the plain instruction and the shipped assistant's."""
    return NEUTRAL_SYSTEM, Catalog().persona("assistant").system_prompt.strip()


def _replies_key(model_id: str, texts: Sequence[str]) -> str:
    parts = [model_id, str(REFERENCE_MAX_TOKENS), *texts]
    return hashlib.sha256("\x01".join(parts).encode("utf-8")).hexdigest()[:20]


def stored_replies(
    backend: Backend,
    pairs: Sequence[tuple[str, str]],
    key: str,
    place: tuple[Sequence[Path], Path, str],
    desc: str,
    progress: bool,
) -> list[list[int]]:
    """Greedy replies to (system, question) ``pairs``: re-read from the file ``name`` in one of ``folders`` while
    its key (model, prompts, length) matches (greedy replies fork between CPUs: the text is data), otherwise
    generated and stored in ``write_to``. ``place`` = (folders, write_to, name)."""
    folders, write_to, name = place
    for folder in folders:
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") == key:
                return data["replies"]
    bar = tqdm(pairs, desc=desc, disable=not progress, file=sys.stderr)
    replies = [generate_reply(backend, s, q, REFERENCE_MAX_TOKENS).tokens for s, q in bar]
    write_to.mkdir(parents=True, exist_ok=True)
    blob = json.dumps({"key": key, "model_id": backend.model_id, "replies": replies}, separators=(",", ":"))
    write_atomic(write_to / name, (blob + "\n").encode(), overwrite=True)
    return replies


def reference_replies(
    backend: Backend, folders: Sequence[Path], write_to: Path, reference: ReferencePrompts, progress: bool
) -> list[tuple[list[int], list[int]]]:
    """(prompt, reply) of the neutral assistants to every everyday prompt (``stored_replies``)."""
    systems = reference_systems()
    key = _replies_key(backend.model_id, [*systems, *reference.everyday])  # = reference_key() for the shipped file
    pairs = [(s, q) for s in systems for q in reference.everyday]
    place = (folders, write_to, REFERENCE_FILE_NAME)
    stored = stored_replies(backend, pairs, key, place, "neutral reference replies", progress)
    return [(prompt_for(backend, s, q), list(r)) for (s, q), r in zip(pairs, stored, strict=True)]


@dataclass(frozen=True)
class WiderReplies:
    """Replies to ``probe_training.yml``: per trait (system index, prompt, reply); the neutral assistant's."""

    elicited: dict[str, list[tuple[int, list[int], list[int]]]]
    neutral: list[tuple[list[int], list[int]]]


def reference_key(model_id: str) -> str:
    """The key ``probe_reference.json`` must carry to be re-read for the current reference prompts."""
    return _replies_key(model_id, [*reference_systems(), *load_reference().everyday])


def wider_pairs_and_key(model_id: str) -> tuple[list[tuple[str, str]], str]:
    """Every (system, question) of ``probe_training.yml`` in stored order, and the key its replies file carries."""
    prompts = load_probe_training()
    pairs = [(s, q) for t in prompts.traits for _, s, q in prompts.plan(t, PER_SYSTEM)]
    pairs += [(NEUTRAL_SYSTEM, q) for q in prompts.questions]
    return pairs, _replies_key(model_id, [f"{a}\x02{b}" for a, b in pairs])


def wider_replies(
    backend: Backend, folders: Sequence[Path], write_to: Path, traits: Sequence[str], progress: bool
) -> WiderReplies:
    """The replies of ``traits`` under the many systems of ``probe_training.yml`` and the neutral assistant's
    replies to its questions (``stored_replies``: generated for every trait of the file at once; none for a trait
    the file has no entry for)."""
    prompts = load_probe_training()
    plans = {t: prompts.plan(t, PER_SYSTEM) for t in prompts.traits}  # all: one stored file whatever the subset
    pairs, key = wider_pairs_and_key(backend.model_id)
    place = (folders, write_to, WIDER_FILE_NAME)
    stored = iter(stored_replies(backend, pairs, key, place, "probe training replies", progress))
    elicited = {
        t: [(k, prompt_for(backend, s, q), list(next(stored))) for k, s, q in plan] for t, plan in plans.items()
    }
    neutral = [(prompt_for(backend, NEUTRAL_SYSTEM, q), list(next(stored))) for q in prompts.questions]
    return WiderReplies({t: r for t, r in elicited.items() if t in traits}, neutral)


@dataclass(frozen=True)
class ProbeTrainingSet:
    data: ProbeData
    neutral_rows: tuple[np.ndarray, ...]  # per neutral reply: (n_layers, n_rows, d)


def gather(
    backend: Backend, store: VectorStore, traits: Sequence[str], *, shipped: bool = False, progress: bool = True
) -> ProbeTrainingSet:
    """Read every trait's stored extraction replies, its ``probe_training.yml`` replies and the neutral
    references (extraction questions, everyday prompts, probe-training questions) at every readable layer.

    Folds are instruction folds: extraction pair p and probe-training system k of a trait go to fold
    p mod CV_FOLDS and k mod CV_FOLDS, so every cross-validated score reads instructions its fit never saw."""
    layers = tuple(range(1, backend.n_layers - 1))
    write_to = store.roots[0] if shipped else store.roots[-1]
    wider = wider_replies(backend, store.roots, write_to, traits, progress)
    elicited, suppressed, folds, suppressed_folds = {}, {}, {}, {}
    neutral: list[Readings] = []
    neutral_folds: list[int] = []

    def read(pairs: list, desc: str, rows: bool = False) -> Readings:
        return read_replies(backend, pairs, layers, keep_rows=rows, desc=desc, progress=progress)

    for name in traits:
        trait, replies = load_trait(name), store.replies(name)
        if replies is None or replies.model_id != backend.model_id:
            raise PlaygroundError(f"no stored extraction replies for '{name}' on {backend.model_id}; extract it first")
        pairs = trait.pairs
        pos, neg, neu = [], [], []
        for j, (q, r) in enumerate(zip(trait.extraction_questions, replies.replies, strict=True)):
            e, s = pairs[j % len(pairs)]
            pos.append((prompt_for(backend, e, q), r.positive))
            neg.append((prompt_for(backend, s, q), r.negative))
            neu.append((prompt_for(backend, NEUTRAL_SYSTEM, q), r.neutral))
        pair_folds = (np.arange(len(pos)) % len(pairs)) % CV_FOLDS
        extra = wider.elicited.get(name, [])
        pos += [(prompt, reply) for _, prompt, reply in extra]
        folds[name] = np.concatenate([pair_folds, np.asarray([k % CV_FOLDS for k, _, _ in extra], dtype=int)])
        elicited[name] = read(pos, f"read {name}").mean
        suppressed[name] = read(neg, f"read {name} (suppressing)").mean
        suppressed_folds[name] = pair_folds
        neutral.append(read(neu, f"read {name} (neutral)", rows=True))
        neutral_folds += list(pair_folds)
    everyday = reference_replies(backend, store.roots, write_to, load_reference(), progress)
    for extra_neutral, desc in ((everyday, "read reference"), (wider.neutral, "read probe-training neutral")):
        if extra_neutral:
            neutral.append(read(extra_neutral, desc, rows=True))
            neutral_folds += list(np.arange(len(extra_neutral)) % CV_FOLDS)
    data = ProbeData(
        layers,
        elicited,
        folds,
        suppressed,
        np.concatenate([r.mean for r in neutral]),
        np.asarray(neutral_folds),
        suppressed_folds,
    )
    return ProbeTrainingSet(data, tuple(row for r in neutral for row in r.rows))


def probes_from(training: ProbeTrainingSet, fits: dict[str, ProbeFit]) -> dict[str, Probe]:
    """Calibrated probes from fits: readout 0 = the neutral replies' typical token at the probe's layer."""
    out = {}
    for trait, fit in fits.items():
        li = training.data.layers.index(fit.layer)
        mean, std = calibrate(fit.direction, [rows[li] for rows in training.neutral_rows])
        cv = {"auroc": fit.cv_auroc, "specificity": fit.cv_specificity}
        out[trait] = Probe(fit.layer, fit.direction, mean, std, fit.method, {"cv": cv})
    return out


def fit_all_probes(
    backend: Backend,
    store: VectorStore,
    traits: Sequence[str] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    shipped: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Probe]:
    """Fit, calibrate and save the probes of ``traits`` (default: every stored trait) into their vectors."""
    names = list(traits or store.names())
    started = time.perf_counter()

    def job() -> dict[str, Probe]:
        training = gather(backend, store, names, shipped=shipped, progress=progress)
        return probes_from(training, fit_probes(training.data, method))

    with backend.reference_decoding():
        probes = run_on_compute_thread(job)
    for name, probe in probes.items():
        vec = store.get(name)
        vec.probe = probe  # a refit drops the old probe's held-out numbers: they measured another direction
        store.save(vec, shipped=shipped)
        if log:
            cv = probe.reliability["cv"]
            log(
                f"{name}: probe layer {probe.layer} ({method}), cross-instruction AUROC {cv['auroc']:.2f}, "
                f"specificity {cv['specificity']:.2f}"
            )
    if log:
        log(f"fit {len(probes)} probes in {time.perf_counter() - started:.0f}s")
    return probes
