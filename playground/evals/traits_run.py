"""Run the held-out trait evaluation end to end and record the measured reliability in the vectors."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..backends.compute_thread import run_on_compute_thread
from ..steering.probe_direction import Probe
from ..steering.store import VectorStore
from ..steering.vectors import TraitVector
from .heldout import HELDOUT_FILE, load_heldout
from .trait_replies import heldout_replies, item_json, read_items
from .traits import STRENGTHS, judge_auroc, probe_z, separation, steering_eval, zero_check


def readers(vectors: Mapping[str, TraitVector]) -> dict[str, Probe]:
    """What the live panel reads for each vector (its fitted probe, else its legacy direction)."""
    out = {}
    for t, v in vectors.items():
        p = v.readout()
        if p is not None:
            out[t] = p
    return out


def run_traits_eval(
    backend: Backend,
    vectors: Mapping[str, TraitVector],
    *,
    n_questions: int = 40,
    n_everyday: int | None = None,
    steer_questions: int = 30,
    strengths: Sequence[float] = STRENGTHS,
    alternatives: Mapping[str, Mapping[str, Probe]] | None = None,
    steering: bool = True,
    heldout: Path = HELDOUT_FILE,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every number of docs/TRAITS_EVAL.md, with the per-item records (text and every probe's z)."""
    started = time.perf_counter()
    held = load_heldout(heldout)
    probes = readers(vectors)
    sets = {"shipped": probes, **(alternatives or {})}
    layers = sorted({p.layer for s in sets.values() for p in s.values()})

    def job() -> dict[str, Any]:
        chosen = None if set(vectors) >= set(held.traits) else sorted(vectors)
        items = heldout_replies(
            backend, held, n_questions, n_everyday=n_everyday, traits=chosen, source=heldout, progress=progress
        )
        readings = read_items(backend, items, layers, progress=progress)
        result: dict[str, Any] = {"model_id": backend.model_id, "backend": backend.name, "sets": {}}
        for name, ps in sets.items():
            z = probe_z(ps, readings)
            result["sets"][name] = {"separation": separation(items, z), "zero": zero_check(items, z)}
            if name == "shipped":
                result["items"] = [
                    {
                        **item_json(it),
                        "z": {t: round(float(s["mean"][i]), 3) for t, s in z.items()},
                        "z_prompt_last": {t: round(float(s["last"][i]), 3) for t, s in z.items()},
                    }
                    for i, it in enumerate(items)
                ]
        result["judge_auroc"] = judge_auroc(backend, items, list(probes))
        result["probes"] = {t: {**p.meta(), "reliability": p.reliability} for t, p in probes.items()}
        if steering:
            result["steering"] = steering_eval(
                backend,
                vectors,
                probes,
                items,
                n_questions=steer_questions,
                strengths=strengths,
                progress=progress,
                log=log,
            )
        return result

    with backend.reference_decoding():
        result = run_on_compute_thread(job)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["n_questions"] = n_questions
    result["heldout_file"] = _shown(heldout)
    if log:
        for t, r in result["sets"]["shipped"]["separation"]["per_trait"].items():
            log(
                f"{t}: held-out AUROC {r['auroc_response']:.2f} (prompt-last {r['auroc_prompt_last']:.2f}), "
                f"specificity {r['specificity']:.2f}"
            )
    return result


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def record_reliability(store: VectorStore, result: Mapping[str, Any], *, shipped: bool) -> list[str]:
    """Write the held-out AUROC and specificity into each evaluated vector's probe (``reliability.heldout``)."""
    written = []
    for t, r in result["sets"]["shipped"]["separation"]["per_trait"].items():
        vec = store.get(t)
        if vec.probe is None:
            continue
        vec.probe.reliability["heldout"] = {
            "auroc": round(float(r["auroc_response"]), 4),
            "specificity": round(float(r["specificity"]), 4),
            "n": int(r["n_elicited"]),
        }
        store.save(vec, shipped=shipped)
        written.append(t)
    return written


def summary_rows(result: Mapping[str, Any], name: str = "shipped") -> dict[str, dict[str, float]]:
    """Per trait: the headline numbers (for the report and the closing comparison)."""
    s = result["sets"][name]
    out = {}
    for t, r in s["separation"]["per_trait"].items():
        row = {k: r[k] for k in ("auroc_response", "auroc_prompt_last", "specificity")}
        row["everyday_share_below_1"] = s["zero"]["everyday"][t]["share_below_1"]
        steer = (result.get("steering") or {}).get(t)
        if steer:
            row["degenerate_at_1"] = steer["degenerate"].get("1", {}).get("share", float("nan"))
            cross = steer["crosstalk"]
            row["steer_own_minus_max_other"] = (
                cross[t] - max(v for k, v in cross.items() if k != t) if t in cross else np.nan
            )
        out[t] = row
    return out
