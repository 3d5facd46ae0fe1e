"""Prompt screening: a supervised "persona hijack" detector on prompt activations.

A drift axis read at the last prompt token separates DAN-style prompts from *short* questions, but not
from benign prompts of similar length and tone (long pasted texts, harmless role-play requests): length
and role-play wording are confounds. The screening probe is trained for the thing we care about instead.
This module is the probe at run time: its features, its scores and its files.

- **Data**: ``personas/guard/screening.yml`` (hijack prompts and benign prompts that cover the confounds,
  written for this project); see :mod:`playground.guard.screening_data`.
- **Features**: the residual activation at the last prompt token (the ``\\n`` after
  ``<|im_start|>assistant``) at a few layers, the same rows the live guard captures before generating.
  The prompt is the persona's full prompt (``conversation.plan_prompt``: system prompt, role models,
  examples) plus the user message; a message too long for the context is cut from the front.
- **Model**: features standardised, L2-regularised logistic regression, trained under several shipped
  personas' system prompts so it keys on the message, not on one persona; layers and C are chosen by
  grouped cross-validation (see :mod:`playground.guard.screening_training`).
- **Scores**: ``z`` = the logit standardised against out-of-fold logits of the benign training prompts
  (0 = a typical benign prompt, the same kind of unit as the trait probes), and ``prob``, the logit
  Platt-calibrated on out-of-fold predictions.

Files: ``models/<model>/guard/screening.{json,safetensors}`` (shipped) or the user cache (trained).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..definitions.personas import Catalog, Persona, compose_system_prompt
from ..errors import PlaygroundError
from ..files import write_atomic
from ..paths import model_dirs
from ..prompt.conversation import plan_prompt

FORMAT_VERSION = 1  # of the probe files
REPLY_RESERVE = 256  # tokens kept free for the reply when a prompt is fitted into the context


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
    return model_dirs(model_id, "guard")


def load_screening(model_id: str) -> ScreeningProbe | None:
    """The screening probe for a model (a user-trained one overrides the shipped one), or None."""
    for folder in guard_dirs(model_id):
        if (folder / "screening.json").is_file():
            probe = ScreeningProbe.load(folder)
            if probe.model_id != model_id:
                raise PlaygroundError(f"{folder}: screening probe is for '{probe.model_id}', not '{model_id}'")
            return probe
    return None
