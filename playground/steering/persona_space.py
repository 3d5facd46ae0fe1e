"""Persona space (issue 22): where characters sit in the model's residual stream, and where a reply sits among them.

Every character (the ones written in ``personas/space/characters.yml``, the shipped personas, and the assistant
under each role model) answers the same everyday questions, greedily; its point is the mean residual of its
reply tokens at one layer (the persona_drift probe's layer, where "which character is speaking" is read best).
The points are centred and their principal components computed; a reply is placed by projecting the mean of its
own reply rows on the first components, and its nearest characters are the closest points in that subspace.

``build_space`` makes it (``python -m playground persona-space``); ``PersonaSpace.place`` reads a reply.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..backends.base import Backend, Steering
from ..definitions.personas import Catalog, Persona, compose_system_prompt
from ..definitions.yaml_source import load_yaml_file
from ..errors import Issue, PlaygroundError, ValidationError
from ..files import write_atomic
from ..paths import SHIPPED_PERSONAS, model_dirs
from .extraction_replies import reply_steps

CHARACTERS_FILE = SHIPPED_PERSONAS / "space" / "characters.yml"
SPACE_FILE = "persona_space.json"
KEEP = 10  # principal components kept (coordinates and nearest characters use them)
MAX_TOKENS = 24  # per reply while a character is measured
SHRINK = 0.5  # how far the within-character covariance is pulled toward a multiple of the identity (fixed)
ASSISTANT = "assistant"


@dataclass(frozen=True)
class Character:
    id: str
    kind: str  # profession | fiction | mood | archetype | assistant_like | persona | role_model
    prompt: str  # the whole system prompt
    persona: Persona | None = None  # what chat would use (examples, steering, sampling); None: a plain assistant


def load_characters(path: Path = CHARACTERS_FILE) -> tuple[list[str], list[Character]]:
    """The questions and the written characters (ValidationError with file, line, column when malformed)."""
    doc = load_yaml_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    issues: list[Issue] = []
    questions = data.get("questions")
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        line, col = doc.where(("questions",))
        issues.append(Issue(doc.file, line, col, "'questions' must be a non-empty list of texts"))
    chars, seen = [], set()
    for i, item in enumerate(data.get("characters") or []):
        ok = isinstance(item, dict) and all(
            isinstance(item.get(k), str) and item[k].strip() for k in ("id", "kind", "prompt")
        )
        if not ok or item["id"] in seen:
            line, col = doc.where(("characters", i))
            why = "needs id, kind and prompt texts" if not ok else f"repeats the id '{item['id']}'"
            issues.append(Issue(doc.file, line, col, f"character {i + 1} {why}"))
            continue
        seen.add(item["id"])
        chars.append(Character(item["id"], item["kind"], item["prompt"].strip()))
    if not chars:
        issues.append(Issue(doc.file, 1, 1, "'characters' must list at least one character"))
    if issues:
        raise ValidationError(issues)
    return [q.strip() for q in questions], chars


def all_characters(catalog: Catalog, path: Path = CHARACTERS_FILE) -> tuple[list[str], list[Character]]:
    """The written characters, every persona of the catalog, and the assistant under each role model."""
    questions, chars = load_characters(path)
    for pid in sorted(catalog.persona_files()):
        persona = catalog.persona(pid)
        roles = [catalog.role_model(r) for r in persona.role_models]
        chars.append(Character(f"persona:{pid}", "persona", compose_system_prompt(persona, roles), persona))
    if ASSISTANT in catalog.persona_files():
        plain = catalog.persona(ASSISTANT)
        for rid in sorted(catalog.role_model_files()):
            prompt = compose_system_prompt(plain, [catalog.role_model(rid)])
            chars.append(Character(f"role_model:{rid}", "role_model", prompt, plain))
    return questions, chars


def _as_persona(character: Character) -> Persona:
    """The persona chat would run for ``character``: its own, or a bare one holding just its prompt."""
    if character.persona is not None:
        return character.persona
    return Persona(id=character.id, name=character.id, description=character.kind, system_prompt=character.prompt)


@dataclass
class PersonaSpace:
    model_id: str
    layer: int
    ids: list[str]
    kinds: list[str]
    center: np.ndarray  # (d,)
    components: np.ndarray  # (KEEP, d), unit rows
    explained: list[float]  # variance ratio of every component (all of them, for the curve)
    coords: np.ndarray  # (n, KEEP): each character's coordinates
    meta: dict[str, Any]

    def coords_of(self, row: np.ndarray) -> np.ndarray:
        """One residual row at ``layer`` in the space's coordinates (the first ``KEEP`` components)."""
        return (np.asarray(row, dtype=np.float64) - self.center) @ self.components.T

    def place_coords(self, point: np.ndarray, near: int = 3) -> dict[str, Any]:
        """A point's first two coordinates and its nearest characters (in the kept components)."""
        order = np.argsort(np.linalg.norm(self.coords - np.asarray(point)[None, :], axis=1))
        return {"x": round(float(point[0]), 3), "y": round(float(point[1]), 3),
                "nearest": [self.ids[i] for i in order[:near]]}  # fmt: skip

    def place(self, rows: np.ndarray, near: int = 3) -> dict[str, Any]:
        """A reply's point from its residual rows at ``layer`` (the mean row, projected: projection is linear)."""
        return self.place_coords(self.coords_of(np.asarray(rows, dtype=np.float64).mean(0)), near)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id, "layer": self.layer, "ids": self.ids, "kinds": self.kinds,
            "center": self.center.tolist(), "components": self.components.tolist(),
            "explained": self.explained, "coords": self.coords.tolist(), "meta": self.meta,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonaSpace:
        return cls(data["model_id"], int(data["layer"]), list(data["ids"]), list(data["kinds"]),
                   np.asarray(data["center"]), np.asarray(data["components"]), list(data["explained"]),
                   np.asarray(data["coords"]), dict(data.get("meta") or {}))  # fmt: skip

    def save(self, folder: Path) -> Path:
        path = folder / SPACE_FILE
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(self.to_json()) + "\n").encode("utf-8"), overwrite=True)
        return path


def space_dirs(model_id: str) -> list[Path]:
    return model_dirs(model_id, "space")


def load_space(model_id: str) -> PersonaSpace | None:
    for folder in space_dirs(model_id):
        if (folder / SPACE_FILE).is_file():
            return PersonaSpace.from_json(json.loads((folder / SPACE_FILE).read_text(encoding="utf-8")))
    return None


def persona_reply_rows(
    backend: Backend,
    persona: Persona,
    system_prompt: str,
    questions: Sequence[str],
    layers: Sequence[int],
    steering: Steering,
    max_tokens: int = MAX_TOKENS,
) -> list[dict[int, np.ndarray]]:
    """Per question, layer -> (steps, d): the rows that chose each token of the persona's greedy reply, read
    exactly as a chat reply is read live: the chat's prompt (examples and all), the persona's steering and
    repetition penalty."""
    from ..prompt.conversation import plan_prompt

    sampling = persona.sampling.merged(temperature=0.0, max_tokens=max_tokens, seed=0)
    out = []
    for question in questions:
        tokens = plan_prompt(backend, persona, system_prompt, [], question, max_tokens).tokens
        stream = backend.stream(tokens, sampling, steering=steering, capture=list(layers))
        try:
            steps = [st for st in reply_steps(backend, stream) if st.hidden is not None]
        finally:
            if hasattr(stream, "close"):
                stream.close()
        if not steps:
            raise PlaygroundError(f"{persona.id}: the reply to {question!r} was empty")
        out.append({layer: np.asarray([st.hidden[layer] for st in steps], dtype=np.float64) for layer in layers})
    return out


def character_replies(
    backend: Backend, character: Character, questions: Sequence[str], layer: int, steering: Steering
) -> np.ndarray:
    """(questions, d): the mean residual at ``layer`` over the character's greedy reply to each question
    (``persona_reply_rows``)."""
    rows = persona_reply_rows(backend, _as_persona(character), character.prompt, questions, [layer], steering)
    return np.stack([r[layer].mean(0) for r in rows])


def map_directions(replies: np.ndarray, keep: int = KEEP, shrink: float = SHRINK) -> np.ndarray:
    """(keep, d) directions along which characters differ most *relative to how much one character's replies to
    different questions differ* (shrunk LDA on (characters, questions, d)): a single reply is then placed by its
    character more than by its topic. Plain PCA of the character means puts topic first (docs/PERSONA_SPACE.md)."""
    means = replies.mean(1)
    between = np.cov(means, rowvar=False, bias=True)
    within_rows = (replies - means[:, None, :]).reshape(-1, replies.shape[2])
    within = within_rows.T @ within_rows / max(1, len(within_rows) - len(means))
    target = np.trace(within) / within.shape[0]
    within = (1 - shrink) * within + shrink * target * np.eye(within.shape[0])
    values, vectors = np.linalg.eigh(within)
    whiten = vectors / np.sqrt(np.maximum(values, 1e-12))  # within^(-1/2) in the eigenbasis
    top = np.linalg.eigh(whiten.T @ between @ whiten)[1][:, ::-1][:, :keep]
    return (whiten @ top).T


def placement_accuracy(replies: np.ndarray, fit: Callable[[np.ndarray], np.ndarray]) -> dict[str, float]:
    """Leave one question out: directions and character means from the other questions; is the held-out reply's
    nearest character its own (top-1), or among the three nearest (top-3)?"""
    n_chars, n_q, _ = replies.shape
    hits1 = hits3 = 0
    for q in range(n_q):
        rest = np.delete(replies, q, axis=1)
        directions = fit(rest)
        center = rest.mean((0, 1))
        coords = (rest.mean(1) - center) @ directions.T
        for c in range(n_chars):
            point = (replies[c, q] - center) @ directions.T
            order = np.argsort(np.linalg.norm(coords - point[None, :], axis=1))
            hits1 += int(order[0] == c)
            hits3 += int(c in order[:3])
    total = n_chars * n_q
    return {"top1": round(hits1 / total, 3), "top3": round(hits3 / total, 3), "chance_top1": round(1 / n_chars, 3)}


def _pca(points: np.ndarray) -> tuple[np.ndarray, list[float]]:
    _, s, vt = np.linalg.svd(points - points.mean(0), full_matrices=False)
    return vt, (s**2 / float(np.sum(s**2))).tolist()


def build_space(
    backend: Backend,
    catalog: Catalog,
    layer: int,
    *,
    steer: Callable[[dict[str, float]], Steering],
    path: Path = CHARACTERS_FILE,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PersonaSpace:
    """Every character's replies (``character_replies``); the PCA of their means (reported) and the map's
    topic-robust directions (``map_directions``), each checked by leave-one-question-out placement.
    ``steer``: a persona's ``steering`` -> Steering (``Playground.steering_for``)."""
    questions, chars = all_characters(catalog, path)
    replies = np.stack(
        [character_replies(backend, c, questions, layer, steer(_as_persona(c).steering))
         for c in tqdm(chars, desc="persona space", disable=not progress, file=sys.stderr)]
    )  # fmt: skip
    means = replies.mean(1)
    center = means.mean(0)
    pcs, explained = _pca(means)
    directions = map_directions(replies)
    checks = {
        "pca": placement_accuracy(replies, lambda r: _pca(r.mean(1))[0][:KEEP]),
        "map": placement_accuracy(replies, map_directions),
    }
    own = f"{checks['map']['top1']:.0%} (map) vs {checks['pca']['top1']:.0%} (PCA)"
    log(f"persona space: {len(chars)} characters at layer {layer}; PC1 explains {explained[0]:.1%}; a held-out reply's "
        f"nearest character is its own {own}")  # fmt: skip
    return PersonaSpace(
        backend.model_id, layer, [c.id for c in chars], [c.kind for c in chars], center, directions,
        [round(float(e), 6) for e in explained], (means - center) @ directions.T,
        {"questions": len(questions), "max_tokens": MAX_TOKENS, "backend": backend.name, "shrink": SHRINK,
         "placement": checks, "pca_components": pcs[:KEEP].tolist(),
         "pca_coords": ((means - center) @ pcs[:KEEP].T).tolist()},
    )  # fmt: skip


__all__ = ["CHARACTERS_FILE", "Character", "PersonaSpace", "all_characters", "build_space", "load_characters",
           "load_space", "space_dirs"]  # fmt: skip
