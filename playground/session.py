"""A chat session: one persona, its history, and streamed replies from a shared model."""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .backends import Backend, load_backend
from .backends.base import Steering
from .conversation import Turn, plan_prompt
from .errors import PlaygroundError
from .personas import Catalog, Persona, compose_system_prompt, render_placeholders
from .probes import ProbeSet, build_steering, summarize
from .vector_store import VectorStore


@dataclass
class ChatResult:
    """Everything about one reply; ``to_dict`` is the contract of ``chat --json`` and the UI API."""

    persona: str
    model: str
    reply: str
    tokens: list[str]
    steering: dict[str, float] = field(default_factory=dict)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    guard: dict[str, Any] = field(default_factory=lambda: {"events": [], "blocked": False})
    notices: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "model": self.model,
            "reply": self.reply,
            "tokens": list(self.tokens),
            "steering": dict(self.steering),
            "probes": self.probes,
            "guard": self.guard,
            "notices": list(self.notices),
            "prompt_tokens": self.prompt_tokens,
            "timing": self.timing,
        }


@dataclass
class StreamEvent:
    """Emitted while a reply streams: ``kind`` is 'token' (with text) or 'done' (with result)."""

    kind: str
    text: str = ""
    index: int = -1
    result: ChatResult | None = None
    readout: dict[str, float] | None = None


def _probe_summary(readouts: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    if not readouts:
        return {}
    traits = list(readouts[0])
    per_token = {t: [r[t] for r in readouts] for t in traits}
    return summarize(per_token, readouts[0])


class Playground:
    """The library's front door: a model shared by any number of sessions."""

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "auto",
        catalog: Catalog | None = None,
        n_ctx: int = 4096,
        loaded_backend: Backend | None = None,
    ):
        self.model_spec = model
        self.backend_choice = backend
        self.catalog = catalog or Catalog()
        self.n_ctx = n_ctx
        self._backend = loaded_backend
        self._vectors: VectorStore | None = None
        self._probes: ProbeSet | None = None
        self._load_lock = threading.Lock()
        self.generation_lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            with self._load_lock:
                if self._backend is None:
                    self._backend = load_backend(self.model_spec, self.backend_choice, n_ctx=self.n_ctx)
        return self._backend

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None or self._vectors.model_id != self.backend.model_id:
            self._vectors = VectorStore(self.backend.model_id)
        return self._vectors

    @property
    def probes(self) -> ProbeSet:
        if self._probes is None:
            self._probes = ProbeSet(self.vectors.all())
        return self._probes

    def steering_for(self, strengths: dict[str, float], source: str = "--steer") -> Steering:
        if not any(strengths.values()):
            return Steering()
        return build_steering(strengths, self.vectors.all(), source)

    def score(self, persona: str | Persona, message: str, reply: str) -> ChatResult:
        """Probe readouts over a given reply, teacher-forced and unsteered (for scoring transcripts)."""
        session = self.session(persona)
        backend = self.backend
        with self.generation_lock:
            plan = plan_prompt(backend, session.persona, session.system_prompt, [], message, 1)
            reply_tokens = backend.tokenize(reply)
            if not reply_tokens:
                raise PlaygroundError("the reply to score is empty")
            probes = self.probes
            rows = backend.hidden_states(plan.tokens + reply_tokens, probes.layers) if probes else {}
        start = len(plan.tokens) - 1
        scored = probes.score_rows({l: r[start : start + len(reply_tokens)] for l, r in rows.items()})
        result = ChatResult(
            persona=session.persona.id,
            model=backend.model_id,
            reply=reply,
            tokens=[backend.token_bytes(t).decode("utf-8", errors="replace") for t in reply_tokens],
            probes=summarize(scored, {t: v[0] for t, v in scored.items()}),
            prompt_tokens=len(plan.tokens),
        )
        return result

    def system_prompt_for(self, persona: Persona) -> str:
        roles = [self.catalog.role_model(r) for r in persona.role_models]
        return compose_system_prompt(persona, roles)

    def session(self, persona: str | Persona) -> ChatSession:
        p = self.catalog.persona(persona) if isinstance(persona, str) else persona
        return ChatSession(self, p)

    def chat(self, persona: str | Persona, message: str, **options: Any) -> ChatResult:
        """One message, no history; returns the finished result."""
        return self.session(persona).send(message, **options)


class ChatSession:
    """History and settings of one conversation. Not shared between users."""

    def __init__(self, playground: Playground, persona: Persona, user_name: str = "User"):
        self.playground = playground
        self.persona = persona
        self.user_name = user_name
        self.history: list[Turn] = []
        self.system_prompt = playground.system_prompt_for(persona)

    @property
    def greeting(self) -> str:
        return render_placeholders(self.persona.greeting, self.persona.name, self.user_name)

    def clear(self) -> None:
        self.history.clear()

    def undo(self) -> Turn | None:
        return self.history.pop() if self.history else None

    def stream(
        self,
        message: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        top_p: float | None = None,
        steering: dict[str, float] | None = None,
        record: bool = True,
    ) -> Iterator[StreamEvent]:
        """Stream a reply token by token; the last event carries the ChatResult."""
        if not message.strip():
            raise PlaygroundError("the message is empty; type something to send")
        sampling = self.persona.sampling.merged(max_tokens=max_tokens, temperature=temperature, seed=seed, top_p=top_p)
        pg = self.playground
        backend = pg.backend
        steer = {**self.persona.steering, **(steering or {})}
        steer = {k: float(v) for k, v in steer.items() if v != 0}
        source = f"persona '{self.persona.id}' steering" if not steering else "steering"
        steer_vectors = pg.steering_for(steer, source)
        probes = pg.probes
        started = time.perf_counter()
        with pg.generation_lock:
            plan = plan_prompt(backend, self.persona, self.system_prompt, self.history, message, sampling.max_tokens)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pieces: list[str] = []
            readouts: list[dict[str, float]] = []
            first_token_s = None
            for step in backend.stream(plan.tokens, sampling, steering=steer_vectors, capture=probes.layers):
                if step.hidden is not None:
                    readouts.append(probes.score_one(step.hidden))
                text = decoder.decode(backend.token_bytes(step.token))
                if first_token_s is None:
                    first_token_s = time.perf_counter() - started
                pieces.append(text)
                yield StreamEvent("token", text, len(pieces) - 1, readout=readouts[-1] if readouts else None)
            tail = decoder.decode(b"", final=True)
            if tail and pieces:
                pieces[-1] += tail
        total = time.perf_counter() - started
        reply = "".join(pieces)
        if record:
            self.history.append(Turn(message, reply))
        result = ChatResult(
            persona=self.persona.id,
            model=backend.model_id,
            reply=reply,
            tokens=pieces,
            steering=steer,
            probes=_probe_summary(readouts),
            notices=plan.notices,
            prompt_tokens=len(plan.tokens),
            timing={
                "first_token_s": round(first_token_s if first_token_s is not None else total, 4),
                "total_s": round(total, 4),
                "tokens_per_s": round(len(pieces) / total, 2) if total > 0 else 0.0,
            },
        )
        yield StreamEvent("done", result=result)

    def send(self, message: str, **options: Any) -> ChatResult:
        result = None
        for event in self.stream(message, **options):
            if event.kind == "done":
                result = event.result
        assert result is not None
        return result
