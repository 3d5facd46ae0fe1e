"""Fit every trait's live probe from the stored extraction replies plus the neutral reference (``probe_fit.py``).

Reads each trait's stored replies (``<trait>.replies.json``: eliciting, suppressing and neutral reply per
extraction question), generates (or re-reads) the neutral assistant's replies to the everyday reference prompts
(``personas/calibration/reference.yml``) under the plain assistant instruction and the shipped assistant
persona's, reads them all at every readable layer, fits the probes jointly and calibrates each on the neutral
replies' per-token readouts. ``python -m playground fit-probes`` runs it.
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
from .reference_data import ReferencePrompts, load_reference
from .reply_reading import Readings, read_replies
from .store import VectorStore

REFERENCE_MAX_TOKENS = 40
REFERENCE_FILE_NAME = "probe_reference.json"


def reference_systems() -> tuple[str, ...]:
    """The neutral assistants the reference is read from: the plain instruction and the shipped assistant's."""
    return NEUTRAL_SYSTEM, Catalog().persona("assistant").system_prompt.strip()


def _reference_key(model_id: str, systems: Sequence[str], prompts: Sequence[str]) -> str:
    parts = [model_id, str(REFERENCE_MAX_TOKENS), *systems, *prompts]
    return hashlib.sha256("\x01".join(parts).encode("utf-8")).hexdigest()[:20]


def reference_replies(
    backend: Backend, folders: Sequence[Path], write_to: Path, reference: ReferencePrompts, progress: bool
) -> list[tuple[list[int], list[int]]]:
    """(prompt, reply) of the neutral assistants to every everyday prompt. Replies stored in one of ``folders``
    are re-read while model, prompts and length are unchanged (greedy replies fork between CPUs: the text is
    data); otherwise they are generated and stored in ``write_to``."""
    systems = reference_systems()
    key = _reference_key(backend.model_id, systems, reference.everyday)
    stored: list[list[int]] | None = None
    for folder in folders:
        path = folder / REFERENCE_FILE_NAME
        if stored is None and path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            stored = data["replies"] if data.get("key") == key else None
    pairs = [(s, q) for s in systems for q in reference.everyday]
    if stored is None:
        bar = tqdm(pairs, desc="neutral reference replies", disable=not progress, file=sys.stderr)
        stored = [generate_reply(backend, s, q, REFERENCE_MAX_TOKENS).tokens for s, q in bar]
        write_to.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"key": key, "model_id": backend.model_id, "replies": stored}, separators=(",", ":"))
        write_atomic(write_to / REFERENCE_FILE_NAME, (blob + "\n").encode(), overwrite=True)
    return [(prompt_for(backend, s, q), list(r)) for (s, q), r in zip(pairs, stored, strict=True)]


@dataclass(frozen=True)
class ProbeTrainingSet:
    data: ProbeData
    neutral_rows: tuple[np.ndarray, ...]  # per neutral reply: (n_layers, n_rows, d)


def gather(
    backend: Backend, store: VectorStore, traits: Sequence[str], *, shipped: bool = False, progress: bool = True
) -> ProbeTrainingSet:
    """Read every trait's stored replies and the neutral reference at every readable layer."""
    layers = tuple(range(1, backend.n_layers - 1))
    elicited, suppressed, folds = {}, {}, {}
    neutral: list[Readings] = []
    neutral_folds: list[int] = []
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
        elicited[name] = read_replies(backend, pos, layers, desc=f"read {name}", progress=progress).mean
        suppressed[name] = read_replies(backend, neg, layers, desc=f"read {name} (suppressing)", progress=progress).mean
        neutral.append(
            read_replies(backend, neu, layers, keep_rows=True, desc=f"read {name} (neutral)", progress=progress)
        )
        folds[name] = (np.arange(len(pos)) % len(pairs)) % CV_FOLDS
        neutral_folds += list((np.arange(len(neu)) % len(pairs)) % CV_FOLDS)
    write_to = store.roots[0] if shipped else store.roots[-1]
    everyday = reference_replies(backend, store.roots, write_to, load_reference(), progress)
    neutral.append(read_replies(backend, everyday, layers, keep_rows=True, desc="read reference", progress=progress))
    neutral_folds += list(np.arange(len(everyday)) % CV_FOLDS)
    data = ProbeData(
        layers,
        elicited,
        folds,
        suppressed,
        np.concatenate([r.mean for r in neutral]),
        np.asarray(neutral_folds),
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
