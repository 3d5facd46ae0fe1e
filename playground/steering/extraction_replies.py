"""The replies a trait vector is extracted from: generated once, kept beside the vector, re-read anywhere.

Extraction has two halves. Generating the eliciting / suppressing / neutral replies is greedy decoding, which
amplifies rounding: on another CPU or llama.cpp build many replies fork after a few tokens, and a vector
extracted from fresh replies differed from the shipped one by a direction cosine of only 0.90 at its probe
layer (docs/FINDINGS.md, "Numerics across CPUs"). Reading activations over given replies is teacher-forced
and changes only by rounding. So the replies are data: stored as token ids next to the vector
(``<trait>.replies.json``), keyed by everything that generated them, and a re-extraction reads the stored
replies whenever the key matches. ``python -m playground extract --regenerate`` makes new ones.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..backends.base import Backend, Steering, Step
from ..backends.sampling import Sampling
from ..definitions.traits import TraitDefinition
from ..errors import PlaygroundError
from ..files import write_atomic
from ..prompt.chat_template import Message
from ..prompt.stop_strings import StopScanner, stop_strings_for

FORMAT_VERSION = 1
SUFFIX = ".replies.json"


@dataclass
class Reply:
    prompt: list[int]
    tokens: list[int]


@dataclass(frozen=True)
class QuestionReplies:
    """Greedy replies to one extraction question: under its pair's eliciting and suppressing instructions, and
    from the neutral assistant (calibration)."""

    positive: list[int]
    negative: list[int]
    neutral: list[int]


@dataclass(frozen=True)
class ReplySet:
    key: str
    model_id: str
    trait: str
    replies: tuple[QuestionReplies, ...]
    sweep: dict[str, list[list[int]]] = field(default_factory=dict)  # the steering sweep's (steer_tuning.py)

    def save(self, path: Path) -> Path:
        data = {
            "format_version": FORMAT_VERSION,
            "key": self.key,
            "model_id": self.model_id,
            "trait": self.trait,
            "replies": [[r.positive, r.negative, r.neutral] for r in self.replies],
            "sweep": self.sweep,
        }
        return write_atomic(path, (json.dumps(data, separators=(",", ":")) + "\n").encode(), overwrite=True)

    @staticmethod
    def load(path: Path) -> ReplySet:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            replies = tuple(QuestionReplies(list(p), list(n), list(u)) for p, n, u in data["replies"])
            sweep = {str(k): [list(r) for r in v] for k, v in (data.get("sweep") or {}).items()}
            return ReplySet(data["key"], data["model_id"], data["trait"], replies, sweep)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PlaygroundError(f"{path}: not a readable extraction-replies file ({exc})") from exc


def replies_path(vector_path: Path) -> Path:
    """``<dir>/<trait>.replies.json`` beside ``<dir>/<trait>.safetensors``."""
    return vector_path.with_name(vector_path.stem + SUFFIX)


def replies_key(model_id: str, trait: TraitDefinition, neutral_system: str, max_tokens: int) -> str:
    """A hash of everything the replies depend on besides the numerics: model, questions, instructions, length."""
    parts = [model_id, neutral_system, str(max_tokens), *trait.extraction_questions]
    parts += [f"{e}\x00{s}" for e, s in trait.pairs]
    return hashlib.sha256("\x01".join(parts).encode("utf-8")).hexdigest()[:20]


def prompt_for(backend: Backend, system: str, question: str) -> list[int]:
    return backend.tokenize(backend.template.render([Message("system", system), Message("user", question)]))


def reply_steps(backend: Backend, stream: Iterator[Step]) -> Iterator[Step]:
    """The steps of a reply: every step, or on a model without a chat template (a base model writing a plain
    transcript) the steps before the model starts the user's next line, as in chat."""
    if not getattr(backend.template, "is_fallback", False):
        yield from stream
        return
    scanner: StopScanner[Step] = StopScanner(stop_strings_for("User"))
    for step in stream:
        piece = backend.token_bytes(step.token).decode("utf-8", errors="replace")
        yield from (kept for _text, kept in scanner.push(piece, step))
        if scanner.stopped:
            return
    yield from (kept for _text, kept in scanner.flush())


def generate_reply(
    backend: Backend, system: str, question: str, max_tokens: int, *, steering: Steering | None = None
) -> Reply:
    """A greedy reply to one question under one system prompt (``reply_steps``: a base model's reply ends where
    it starts the user's next line)."""
    prompt = prompt_for(backend, system, question)
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1, seed=0)
    stream = backend.stream(prompt, sampling, steering=steering)
    try:
        return Reply(prompt, [step.token for step in reply_steps(backend, stream)])
    finally:
        if hasattr(stream, "close"):
            stream.close()


def generate_replies(
    backend: Backend, trait: TraitDefinition, *, neutral_system: str, max_tokens: int, progress: bool = True
) -> ReplySet:
    """Generate every extraction reply of ``trait`` (three per question) on ``backend``."""
    pairs = trait.pairs
    out = []
    questions = trait.extraction_questions
    bar = tqdm(total=len(questions), desc=f"replies {trait.name}", disable=not progress, file=sys.stderr)
    for j, question in enumerate(questions):
        eliciting, suppressing = pairs[j % len(pairs)]
        out.append(
            QuestionReplies(
                generate_reply(backend, eliciting, question, max_tokens).tokens,
                generate_reply(backend, suppressing, question, max_tokens).tokens,
                generate_reply(backend, neutral_system, question, max_tokens).tokens,
            )
        )
        bar.update(1)
    bar.close()
    key = replies_key(backend.model_id, trait, neutral_system, max_tokens)
    return ReplySet(key, backend.model_id, trait.name, tuple(out))
