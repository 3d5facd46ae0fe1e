"""Exchange steering vectors with llama.cpp and repeng: export control-vector GGUFs, import and calibrate them.

An imported control vector (llama.cpp ``--control-vector`` / repeng ``ControlVector.export_gguf`` format:
``direction.<l>`` F32 tensors) has directions but none of what makes it a playground trait, so the import
runs a short calibration on the loaded model:

- readouts: mean and standard deviation of each layer's projection over a neutral assistant's reply tokens
  (0 = typical assistant), and the median residual norm per layer;
- probe layer: with no labelled data to choose by, the layer of the vector with the largest norm relative
  to the residual stream there (where the file's author put most of the push);
- steering: the same coherence sweep as extraction (``steer_tuning``) picks the layer and what strength 1
  means.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend
from ..definitions.personas import sanitize_id
from ..errors import PlaygroundError
from .extraction import NEUTRAL_SYSTEM
from .extraction_replies import generate_reply
from .strength import candidate_layers, tune_steering
from .vectors import TraitVector

CALIBRATION_QUESTIONS = (
    "How do I make a good cup of coffee?",
    "What is a black hole?",
    "Can you suggest a name for a new bakery?",
    "How do I learn to swim as an adult?",
    "Why do leaves change colour in autumn?",
    "What should I pack for a weekend hike?",
    "How does a refrigerator keep food cold?",
    "Give me a tip for writing a cover letter.",
)


def export_vector(vec: TraitVector, out: str | Path, *, force: bool = False) -> Path:
    path = Path(out)
    if path.exists() and not force:
        raise PlaygroundError(f"{path} exists; pass --force to replace it")
    return vec.to_gguf(path)


def import_vector(
    backend: Backend, path: str | Path, name: str, *, tune_questions: int = 3, progress: bool = True
) -> TraitVector:
    """Read a control-vector GGUF and calibrate it on ``backend`` (about 20-40 s for the default model)."""
    trait = sanitize_id(name)
    try:
        vec = TraitVector.from_gguf(path, trait=trait, model_id=backend.model_id)
    except (ValueError, FileNotFoundError) as exc:
        raise PlaygroundError(str(exc)) from None
    if vec.d_model != backend.d_model:
        raise PlaygroundError(
            f"{path}: vectors have {vec.d_model} dimensions but {backend.model_id} has {backend.d_model}; "
            "this control vector was made for another model"
        )
    readable = [l for l in vec.directions if 1 <= l < backend.n_layers - 1]
    if not readable:
        raise PlaygroundError(f"{path}: none of its layers ({sorted(vec.directions)}) can be used on this model")
    rows: dict[int, list[np.ndarray]] = {l: [] for l in readable}
    for q in tqdm(CALIBRATION_QUESTIONS, desc=f"calibrate {trait}", disable=not progress, file=sys.stderr):
        reply = generate_reply(backend, NEUTRAL_SYSTEM, q, 32)
        if not reply.tokens:
            continue
        hs = backend.hidden_states(reply.prompt + reply.tokens, readable)
        start = len(reply.prompt) - 1
        for l in readable:
            rows[l].append(hs[l][start : start + len(reply.tokens)])
    resid_norm: dict[int, float] = {}
    for l in readable:
        r = np.concatenate(rows[l], axis=0)
        proj = r @ vec.unit(l)
        vec.calibration[l] = (float(proj.mean()), float(proj.std() + 1e-6))
        resid_norm[l] = float(np.median(np.linalg.norm(r, axis=1)))
    vec.directions = {l: vec.directions[l] for l in readable}
    vec.probe_layer = max(readable, key=lambda l: vec.norm(l) / resid_norm[l])
    layers = [l for l in candidate_layers(backend.n_layers) if l in vec.directions] or [vec.probe_layer]
    choice = tune_steering(
        backend,
        vec,
        CALIBRATION_QUESTIONS[:tune_questions],
        resid_norm,
        system=NEUTRAL_SYSTEM,
        layers=layers,
        progress=progress,
    )
    vec.steer_layer = choice.layer
    vec.steer_scale = {l: float(choice.fraction * resid_norm[l]) for l in readable}
    vec.method = "imported_control_vector"
    vec.extra = {
        "source": str(path),
        "resid_norm": {str(l): round(v, 4) for l, v in resid_norm.items()},
        "steering": choice.to_json(),
        "backend": backend.name,
    }
    return vec
