"""Training the screening probe: features of many (prompt, persona) samples, then layers and C by grouped CV.

Each training prompt is read under a few shipped personas' full prompts (the assistant always, the others
in rotation), so the probe keys on the message and not on one persona; :data:`HELD_OUT_PERSONAS` stay out
so the evaluation can show a persona the probe never saw. Layers are chosen by greedy forward selection
and C from a small grid, by cross-validation grouped by prompt id (all persona variants of a prompt in
one fold), maximising the mean of the overall AUROC and the worst AUROC against any one benign group.
The final fit uses every sample; the out-of-fold logits set the z scale, the Platt calibration and the
suggested warn / act thresholds.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..definitions.personas import Catalog
from ..errors import PlaygroundError
from ..steering.metrics import auroc
from .screening import Context, ScreeningProbe, contexts_for, last_rows, prompt_tokens
from .screening_data import BENIGN_GROUPS, ScreeningData, ScreenPrompt, load_screening_data

# Personas held out of training so the evaluation can show a persona the probe never saw.
HELD_OUT_PERSONAS = ("pirate",)

Log = Callable[[str], None]


@dataclass
class FeatureSet:
    """Last-prompt-token rows of many (prompt, persona) samples: layer -> (n, d)."""

    rows: dict[int, np.ndarray]
    y: np.ndarray  # 1 hijack, 0 benign
    groups: np.ndarray  # prompt id (all persona variants of one prompt share a fold)
    kinds: np.ndarray  # hijack style or benign group
    personas: np.ndarray
    truncated: int = 0


def collect_features(
    backend: Backend,
    prompts: Sequence[ScreenPrompt],
    contexts: Sequence[Context],
    layers: Sequence[int],
    *,
    per_prompt: int = 3,
    progress: bool = True,
) -> FeatureSet:
    """Each prompt under ``per_prompt`` personas: the first context always, the others in rotation."""
    from tqdm import tqdm

    per_prompt = max(1, min(per_prompt, len(contexts)))
    jobs: list[tuple[ScreenPrompt, Context]] = []
    rest = list(contexts[1:])
    for i, p in enumerate(prompts):
        jobs.append((p, contexts[0]))
        for k in range(per_prompt - 1):
            jobs.append((p, rest[(i * (per_prompt - 1) + k) % len(rest)]))
    rows: dict[int, list[np.ndarray]] = {l: [] for l in layers}
    truncated = 0
    for p, ctx in tqdm(jobs, desc="screening features", disable=not progress, file=sys.stderr):
        tokens, notices = prompt_tokens(backend, ctx, p.text)
        truncated += bool(notices)
        for l, r in last_rows(backend, tokens, layers).items():
            rows[l].append(r)
    return FeatureSet(
        rows={l: np.stack(r) for l, r in rows.items()},
        y=np.array([p.label for p, _ in jobs]),
        groups=np.array([p.id for p, _ in jobs]),
        kinds=np.array([p.kind for p, _ in jobs]),
        personas=np.array([c.persona.id for _, c in jobs]),
        truncated=truncated,
    )


def _fit_lr(X: np.ndarray, y: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(0)
    scale = X.std(0) + 1e-6
    lr = LogisticRegression(C=C, max_iter=3000, tol=1e-5)
    lr.fit((X - mean) / scale, y)
    return mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def _oof(fs: FeatureSet, layers: Sequence[int], C: float, folds: int) -> np.ndarray:
    """Out-of-fold logits, grouped by prompt."""
    from sklearn.model_selection import GroupKFold

    X = np.concatenate([fs.rows[l] for l in layers], axis=1).astype(np.float64)
    out = np.zeros(len(fs.y))
    n_groups = len(set(fs.groups.tolist()))
    for tr, te in GroupKFold(n_splits=min(folds, n_groups)).split(X, fs.y, fs.groups):
        m, s, w, b = _fit_lr(X[tr], fs.y[tr], C)
        out[te] = ((X[te] - m) / s) @ w + b
    return out


def cv_report(fs: FeatureSet, scores: np.ndarray) -> dict[str, float]:
    """AUROC of hijack vs all benign and vs each benign group."""
    pos = scores[fs.y == 1]
    rep = {"all": auroc(pos, scores[fs.y == 0])}
    for g in BENIGN_GROUPS:
        neg = scores[(fs.y == 0) & (fs.kinds == g)]
        if len(neg):
            rep[g] = auroc(pos, neg)
    return rep


def _objective(rep: Mapping[str, float]) -> float:
    worst = min(v for k, v in rep.items() if k != "all")
    return 0.5 * (rep["all"] + worst)


def fit_screening(
    fs: FeatureSet,
    model_id: str,
    *,
    candidates: Sequence[int],
    Cs: Sequence[float] = (0.001, 0.01, 0.1),
    max_layers: int = 3,
    folds: int = 5,
    log: Log | None = None,
) -> ScreeningProbe:
    """Choose layers (greedy forward selection) and C by grouped CV, then fit on everything."""
    from threadpoolctl import threadpool_limits

    # Many small BLAS calls: extra BLAS threads only fight for the cores (10x slower on 2 shared cores).
    with threadpool_limits(limits=1):
        return _fit_screening(fs, model_id, candidates=candidates, Cs=Cs, max_layers=max_layers, folds=folds, log=log)


Candidate = tuple[float, list[int], float, dict[str, float], np.ndarray]  # objective, layers, C, AUROCs, OOF logits


def _fit_screening(
    fs: FeatureSet,
    model_id: str,
    *,
    candidates: Sequence[int],
    Cs: Sequence[float],
    max_layers: int,
    folds: int,
    log: Log | None,
) -> ScreeningProbe:
    best, tried = _select_layers(fs, candidates=candidates, Cs=Cs, max_layers=max_layers, folds=folds, log=log)
    obj, layers, C, rep, oof = best
    X = np.concatenate([fs.rows[l] for l in layers], axis=1).astype(np.float64)
    m, s, w, b = _fit_lr(X, fs.y, C)
    benign_oof = oof[fs.y == 0]
    z_mean, z_std = float(benign_oof.mean()), float(benign_oof.std() + 1e-6)
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, None], fs.y)
    z_oof = (oof - z_mean) / z_std
    return ScreeningProbe(
        model_id=model_id,
        layers=list(layers),
        mean=m,
        scale=s,
        coef=w,
        intercept=b,
        z_mean=z_mean,
        z_std=z_std,
        platt=(float(platt.coef_[0][0]), float(platt.intercept_[0])),
        meta=_fit_meta(fs, z_oof, best, tried, folds),
    )


def _select_layers(
    fs: FeatureSet,
    *,
    candidates: Sequence[int],
    Cs: Sequence[float],
    max_layers: int,
    folds: int,
    log: Log | None,
) -> tuple[Candidate, list[dict[str, Any]]]:
    """The best single layer and C, then layers added greedily while the CV objective gains > 0.002;
    returns the winner and every (layers, C) tried."""
    say = log or (lambda _m: None)
    tried: list[dict[str, Any]] = []

    def evaluate(layers: list[int], C: float) -> tuple[float, dict[str, float], np.ndarray]:
        oof = _oof(fs, layers, C, folds)
        rep = cv_report(fs, oof)
        tried.append({"layers": layers, "C": C, "objective": round(_objective(rep), 4), "auroc": round(rep["all"], 4)})
        return _objective(rep), rep, oof

    best: Candidate | None = None
    for l in candidates:
        for C in Cs:
            obj, rep, oof = evaluate([l], C)
            if best is None or obj > best[0] + 1e-9:
                best = (obj, [l], C, rep, oof)
    assert best is not None
    say(f"best single layer {best[1][0]} (C={best[2]:g}): CV objective {best[0]:.4f}, AUROC {best[3]['all']:.4f}")
    while len(best[1]) < max_layers:
        step = best
        for l in candidates:
            if l in best[1]:
                continue
            for C in Cs:
                obj, rep, oof = evaluate(sorted(best[1] + [l]), C)
                if obj > step[0] + 0.002:
                    step = (obj, sorted(best[1] + [l]), C, rep, oof)
        if step is best:
            break
        best = step
        say(f"layers {best[1]} (C={best[2]:g}): CV objective {best[0]:.4f}, AUROC {best[3]['all']:.4f}")
    return best, tried


def _fit_meta(
    fs: FeatureSet, z_oof: np.ndarray, best: Candidate, tried: list[dict[str, Any]], folds: int
) -> dict[str, Any]:
    """The probe's record of how it was chosen: thresholds, CV scores and the training set."""
    obj, _layers, C, rep, _oof_logits = best
    zb, zh = z_oof[fs.y == 0], z_oof[fs.y == 1]
    thresholds = {
        "warn": _ceil_quarter(float(np.percentile(zb, 95))),
        "act": _ceil_quarter(float(np.percentile(zb, 99))),
    }
    return {
        "C": C,
        "thresholds": thresholds,
        "thresholds_rule": (
            "warn = 95th and act = 99th percentile of the benign training prompts' out-of-fold z, "
            "rounded up to a multiple of 0.25"
        ),
        "cv": {
            "folds": folds,
            "grouped_by": "prompt id (all persona variants of a prompt in one fold)",
            "objective": round(obj, 4),
            "auroc": {k: round(v, 4) for k, v in rep.items()},
            "benign_z_percentiles": {str(p): round(float(np.percentile(zb, p)), 3) for p in (50, 90, 95, 99, 100)},
            "hijack_z_percentiles": {str(p): round(float(np.percentile(zh, p)), 3) for p in (0, 5, 10, 50)},
            "tried": sorted(tried, key=lambda t: -t["objective"])[:12],
        },
        "train": {
            "samples": int(len(fs.y)),
            "hijack_prompts": int(len(set(fs.groups[fs.y == 1].tolist()))),
            "benign_prompts": int(len(set(fs.groups[fs.y == 0].tolist()))),
            "personas": sorted(set(fs.personas.tolist())),
            "truncated_prompts": fs.truncated,
        },
    }


def _ceil_quarter(x: float) -> float:
    return float(np.ceil(x * 4) / 4)


def default_personas(catalog: Catalog) -> list[str]:
    """Training personas: the assistant first, then every shipped persona except the held-out ones."""
    names = [n for n in catalog.persona_files() if n not in HELD_OUT_PERSONAS and n != "assistant"]
    return ["assistant", *names]


def train_screening(
    backend: Backend,
    *,
    data: ScreeningData | None = None,
    catalog: Catalog | None = None,
    personas: Sequence[str] | None = None,
    per_prompt: int = 3,
    candidates: Sequence[int] | None = None,
    Cs: Sequence[float] = (0.001, 0.01, 0.1),
    max_layers: int = 3,
    folds: int = 5,
    progress: bool = True,
    log: Log | None = None,
) -> ScreeningProbe:
    """Train the screening probe for ``backend``'s model on ``data`` (default: the shipped file)."""
    started = time.perf_counter()
    data = data or load_screening_data()
    if not data.hijack or not data.benign:
        raise PlaygroundError(f"{data.file}: need both hijack and benign prompts to train")
    catalog = catalog or Catalog()
    names = list(personas or default_personas(catalog))
    contexts = contexts_for(catalog, names)
    if candidates is None:
        candidates = list(range(2, backend.n_layers - 1, 2))  # the last l_out holds output rows only
    fs = collect_features(backend, data.prompts, contexts, candidates, per_prompt=per_prompt, progress=progress)
    if fs.truncated and log:
        log(f"{fs.truncated} prompt(s) were too long for the context and were cut from the front")
    probe = fit_screening(
        fs, backend.model_id, candidates=candidates, Cs=Cs, max_layers=max_layers, folds=folds, log=log
    )
    probe.meta["train"].update(
        {
            "data_file": Path(data.file).name,
            "data_sha256": hashlib.sha256(Path(data.file).read_bytes()).hexdigest(),
            "per_prompt_personas": per_prompt,
            "held_out_personas": [n for n in HELD_OUT_PERSONAS if n not in names],
            "candidate_layers": list(candidates),
            "backend": backend.name,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return probe
