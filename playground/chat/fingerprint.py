"""The designer's fingerprint: what a persona *is* to the model, measured. Its greedy replies to a fixed set of
everyday questions (the persona space's questions, so its map point is measured like every character's), read
by every probe and placed on the persona map. Recorded on every save, so the editor can show what an edit did to
the character next to the version saved before it.

The history lives in the user cache (``fingerprints/<model>/<persona>.json``, the last ``KEEP`` saves), written
atomically; a damaged history file is set aside and started again, never a reason to refuse a save.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..definitions.personas import Persona
from ..errors import PlaygroundError
from ..files import write_atomic
from ..paths import user_cache_dir
from ..steering.persona_space import load_characters, persona_reply_rows

if TYPE_CHECKING:
    from .session import Playground

REPLY_TOKENS = 32  # per question: long enough for the character to show, short enough for a save (~1 s each)
KEEP = 20  # saved fingerprints per persona


@dataclass
class Fingerprint:
    persona: str
    model: str
    probes: dict[str, float]  # every probe's mean readout (z) over the replies
    map: dict[str, Any] | None  # {"x", "y", "nearest"} on the persona map, when the model has one
    questions: int
    digest: str  # of the persona's prompt, steering and sampling: which version was measured
    measured_at: float = field(default_factory=time.time)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        probes = {str(k): float(v) for k, v in data["probes"].items()}
        return cls(str(data["persona"]), str(data["model"]), probes, data.get("map"), int(data["questions"]),
                   str(data["digest"]), float(data["measured_at"]))  # fmt: skip


def persona_digest(pg: Playground, persona: Persona) -> str:
    parts = [pg.system_prompt_for(persona), json.dumps(persona.steering, sort_keys=True), repr(persona.sampling),
             json.dumps([[e.user, e.assistant] for e in persona.examples])]  # fmt: skip
    return hashlib.sha1("\n\x00".join(parts).encode("utf-8")).hexdigest()[:12]


def measure(pg: Playground, persona: Persona, questions: Sequence[str] | None = None) -> Fingerprint:
    """The persona's fingerprint on ``pg``'s model (one greedy reply per question; waits for the model)."""
    questions = list(questions or load_characters()[0])
    probes, space = pg.probes, pg.persona_space
    layers = sorted(set(probes.layers) | ({space.layer} if space is not None else set()))
    if not layers:
        raise PlaygroundError(
            f"{pg.backend.model_id} has no trait probes and no persona map, so there is nothing to measure "
            "(python -m playground prepare)"
        )
    steering = pg.steering_for(persona.steering, f"persona '{persona.id}' steering")
    with pg.generation_lock:
        rows = persona_reply_rows(pg.backend, persona, pg.system_prompt_for(persona), questions, layers, steering,
                                  REPLY_TOKENS)  # fmt: skip
    readouts = [probes.score_rows(r) for r in rows] if probes else []
    traits = list(readouts[0]) if readouts else []
    means = {t: round(float(np.mean([r[t].mean() for r in readouts])), 3) for t in traits}
    placed = None
    if space is not None:
        point = np.mean([space.coords_of(r[space.layer].mean(0)) for r in rows], axis=0)
        placed = space.place_coords(point)
    return Fingerprint(persona.id, pg.backend.model_id, means, placed, len(questions), persona_digest(pg, persona))


class FingerprintHistory:
    """The fingerprints recorded for one model, per persona, oldest first."""

    def __init__(self, model_id: str, root: Path | None = None):
        self.folder = (root or user_cache_dir() / "fingerprints") / model_id

    def _path(self, persona_id: str) -> Path:
        return self.folder / f"{persona_id}.json"

    def load(self, persona_id: str) -> list[Fingerprint]:
        path = self._path(persona_id)
        if not path.is_file():
            return []
        try:
            return [Fingerprint.from_json(d) for d in json.loads(path.read_text(encoding="utf-8"))["history"]]
        except (ValueError, KeyError, TypeError):
            path.replace(path.with_suffix(".damaged.json"))  # kept for a look, out of the way
            return []

    def record(self, fingerprint: Fingerprint) -> Fingerprint | None:
        """Append ``fingerprint``; returns the one recorded before it (None for the first)."""
        history = self.load(fingerprint.persona)
        previous = history[-1] if history else None
        history = [*history, fingerprint][-KEEP:]
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"history": [asdict(f) for f in history]}, indent=1) + "\n"
        write_atomic(self._path(fingerprint.persona), text.encode("utf-8"), overwrite=True)
        return previous
