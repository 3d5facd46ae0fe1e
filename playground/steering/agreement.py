"""How closely two extractions of one trait agree: the yardstick for "the shipped vectors are valid here".

Extraction generates greedy replies, and greedy decoding amplifies rounding: on another CPU or llama.cpp
build some replies fork after a few tokens, so a re-extraction is never bit-identical across machines.
What must hold everywhere (issue 14): the same probe and steering layers, a direction cosine of at least
:data:`MIN_COSINE` at the probe layer, and calibrated readouts over a fixed text that correlate at least
:data:`MIN_READOUT_R` with the shipped vector's.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..prompt.chat_template import Message
from .vectors import TraitVector

MIN_COSINE = 0.99
MIN_READOUT_R = 0.98

# A fixed text to read both vectors over (written for this check; not used by extraction or evaluation).
READOUT_TEXTS: tuple[tuple[str, str], ...] = (
    (
        "Can you tell me about your weekend?",
        "Oh, it was a strange one. On Saturday I tried to bake a cake for my neighbour, burnt it completely, and "
        "then pretended it was a new recipe called charcoal delight. She laughed so hard she dropped her tea. "
        "Sunday was quieter: a long walk by the river, a nap, and far too much cold pizza. Honestly, I regret "
        "nothing, and I would do it all again, except perhaps the cake. What did you get up to?",
    ),
    (
        "My code keeps crashing. What should I do?",
        "Start by reading the error message carefully and find the line it points to. Add a print statement or "
        "use a debugger just before that line to see what the values are. Check whether a variable is empty or "
        "of the wrong type. If you changed something recently, undo it and see if the crash goes away. Write a "
        "tiny test that reproduces the problem, fix it, and keep the test so the bug never comes back.",
    ),
)


@dataclass(frozen=True)
class Agreement:
    trait: str
    same_layers: bool
    layers: tuple[int, int]  # (probe, steer) of the re-extraction
    reference_layers: tuple[int, int]
    cosine: float  # direction cosine at the reference's probe layer
    readout_r: float  # Pearson r of the calibrated per-token readouts over READOUT_TEXTS
    readout_max_gap: float  # largest |z_a - z_b| over those tokens

    @property
    def ok(self) -> bool:
        return self.same_layers and self.cosine >= MIN_COSINE and self.readout_r >= MIN_READOUT_R

    def to_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def readouts(backend: Backend, vec: TraitVector, texts: Sequence[tuple[str, str]] = READOUT_TEXTS) -> np.ndarray:
    """Calibrated per-token readouts (z) of ``vec`` at its probe layer over the replies of ``texts``."""
    layer = vec.probe_layer if vec.probe_layer is not None else max(vec.directions)
    unit = vec.unit(layer)
    mean, std = vec.calibration.get(layer, (0.0, 1.0))
    out = []
    for question, reply in texts:
        prompt = backend.tokenize(backend.template.render([Message("user", question)]))
        tokens = prompt + backend.tokenize(reply)
        rows = backend.hidden_states(tokens, [layer], start=len(prompt))[layer]
        out.append((rows @ unit - mean) / std)
    return np.concatenate(out)


def compare(backend: Backend, fresh: TraitVector, reference: TraitVector) -> Agreement:
    """How ``fresh`` (a re-extraction) agrees with ``reference`` (e.g. the shipped vector), read on ``backend``."""
    layer = reference.probe_layer if reference.probe_layer is not None else max(reference.directions)
    a, b = fresh.directions[layer], reference.directions[layer]
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    za, zb = readouts(backend, fresh), readouts(backend, reference)
    return Agreement(
        trait=reference.trait,
        same_layers=(fresh.probe_layer, fresh.steer_layer) == (reference.probe_layer, reference.steer_layer),
        layers=(int(fresh.probe_layer or -1), int(fresh.steer_layer or -1)),
        reference_layers=(int(reference.probe_layer or -1), int(reference.steer_layer or -1)),
        cosine=round(cosine, 5),
        readout_r=round(float(np.corrcoef(za, zb)[0, 1]), 5),
        readout_max_gap=round(float(np.abs(za - zb).max()), 4),
    )


def run_cli(args: Any) -> int:
    """``python -m playground eval reextract [--trait T ...]``: re-extract each shipped vector from its stored
    replies on this machine and compare it with the shipped one; prints one JSON object."""
    from ..backends.llama_build import system_info
    from ..chat.session import Playground
    from ..definitions.traits import load_trait
    from .extraction import extract_trait

    pg = Playground(args.model, backend=args.backend)
    names = args.trait or pg.vectors.names()
    out: dict[str, Any] = {"model": pg.backend.model_id, "build": system_info().strip(), "traits": {}}
    for name in names:
        shipped = pg.vectors.get(name)
        started = time.perf_counter()
        fresh = extract_trait(pg.backend, load_trait(name), progress=False, replies=pg.vectors.replies(name))
        agreement = compare(pg.backend, fresh, shipped)
        out["traits"][name] = {
            **agreement.to_json(),
            "replies_reused": fresh.extra["replies"]["reused"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name}: {agreement.to_json()}", file=sys.stderr)
    out["all_ok"] = all(t["ok"] for t in out["traits"].values())
    print(json.dumps(out, indent=1))
    return 0 if out["all_ok"] else 1
