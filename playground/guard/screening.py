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

from ..backends.base import Backend
from ..definitions.personas import Catalog, Persona, compose_system_prompt
from ..definitions.schema import did_you_mean
from ..definitions.yaml_source import load_yaml_file
from ..errors import Issue, PlaygroundError, ValidationError
from ..files import write_atomic
from ..paths import REPO_ROOT
from ..prompt.conversation import plan_prompt
from ..steering.store import SHIPPED_MODELS, user_cache_dir

GUARD_DATA = REPO_ROOT / "personas" / "guard"
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
    zb, zh = z_oof[fs.y == 0], z_oof[fs.y == 1]
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
