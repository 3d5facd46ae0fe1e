"""A chat session: one persona, its history, and streamed replies from a shared model."""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import Backend, load_backend
from ..backends.base import Interventions, Steering
from ..definitions.personas import Catalog, Persona, compose_system_prompt, render_placeholders
from ..errors import PlaygroundError
from ..guard.baseline import PersonaBaseline, baseline_key, measure_baseline
from ..guard.policy import (
    BLOCK,
    CONTINUE,
    HIJACK,
    REGENERATE,
    GuardEvent,
    GuardMonitor,
    Policy,
    PolicyHolder,
    refusal_text,
)
from ..prompt.conversation import Turn, plan_prompt
from ..prompt.stop_strings import StopScanner, stop_strings_for
from ..steering.probes import ProbeSet, build_steering, summarize
from ..steering.store import VectorStore

if TYPE_CHECKING:
    from ..guard.screening import ScreeningProbe


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
    """Emitted while a reply streams.

    ``kind``: 'token' (``text`` to append), 'reset' (a guardrail discarded the text so far; the reply is
    being written again), 'replace' (a guardrail blocked the reply; ``text`` is the whole new reply) or
    'done' (``result`` holds everything). ``guard`` lists guard events raised since the previous event.
    """

    kind: str
    text: str = ""
    index: int = -1
    result: ChatResult | None = None
    readout: dict[str, float] | None = None
    guard: list[dict[str, Any]] = field(default_factory=list)


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
        policy_path: str | Path | None = None,
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
        self.policies = PolicyHolder(policy_path, self.catalog) if policy_path is not None else PolicyHolder(
            catalog=self.catalog
        )
        self._baselines: dict[str, PersonaBaseline] = {}
        self._screening: ScreeningProbe | None | bool = False  # False = not looked up yet

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

    @property
    def screening(self) -> ScreeningProbe | None:
        """The prompt-screening (hijack) probe shipped for this model, if any."""
        if self._screening is False:
            from ..guard.screening import load_screening

            self._screening = load_screening(self.backend.model_id)
        return self._screening  # type: ignore[return-value]

    def policy_for(self, persona: Persona) -> Policy:
        """The global policy with the persona's ``guard:`` overrides."""
        return self.policies.policy.merged(persona.guard)

    def baseline_for(
        self, persona: Persona, system_prompt: str, screening: ScreeningProbe | None = None
    ) -> PersonaBaseline:
        """The persona's typical readouts (measured once per process; call with the generation lock held)."""
        key = baseline_key(self.backend.model_id, system_prompt, persona) + ("+screen" if screening else "")
        if key not in self._baselines:
            self._baselines[key] = measure_baseline(self.backend, persona, system_prompt, self.probes, screening)
        return self._baselines[key]

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
        self.guard_log: list[dict[str, Any]] = []  # every guard event of this session, with its turn

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
        policy = pg.policy_for(self.persona)
        started = time.perf_counter()
        with pg.generation_lock:
            plan = plan_prompt(backend, self.persona, self.system_prompt, self.history, message, sampling.max_tokens)
            screening = pg.screening if policy.screen_prompt and HIJACK in policy.rules else None
            guarded = bool(policy.rules) and bool(probes)
            baseline = (
                pg.baseline_for(self.persona, self.system_prompt, screening)
                if guarded and policy.baseline == "persona"
                else PersonaBaseline({}, {})
            )
            capture = sorted(set(probes.layers) | set(screening.layers if screening else ()))
            events: list[GuardEvent] = []
            attempt, extra_steer = 0, {}
            first_token_s = None
            stop_strings = stop_strings_for(self.user_name)

            def show(items: list[tuple[str, tuple[dict[str, float], list[dict[str, Any]]]]]) -> Iterator[StreamEvent]:
                """Emit pieces the stop-string scanner released, each with its readout and guard events."""
                nonlocal first_token_s
                for text, (readout, guard) in items:
                    if first_token_s is None:
                        first_token_s = time.perf_counter() - started
                    readouts.append(readout)
                    pieces.append(text)
                    yield StreamEvent("token", text, len(pieces) - 1, readout=readout or None, guard=guard)

            while True:
                attempt_steering = steer_vectors
                if extra_steer:
                    attempt_steering = steer_vectors.combined(pg.steering_for(extra_steer, "guard"))
                interventions = Interventions()
                monitor = GuardMonitor(
                    policy,
                    pg.vectors.all(),
                    interventions,
                    baseline=baseline.reply,
                    prompt_baseline=baseline.prompt,
                    attempt=attempt,
                )
                decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
                pieces: list[str] = []
                readouts: list[dict[str, float]] = []
                verdict = CONTINUE
                reported = 0
                stops: StopScanner[tuple[dict[str, float], list[dict[str, Any]]]] = StopScanner(stop_strings)
                stream = backend.stream(
                    plan.tokens, sampling, steering=attempt_steering, capture=capture, interventions=interventions
                )
                try:
                    for index, step in enumerate(stream):
                        readout = probes.score_one(step.hidden) if step.hidden is not None and probes else {}
                        if guarded and index == 0 and policy.screen_prompt:
                            values = dict(readout)
                            if screening is not None and step.hidden is not None:
                                values[HIJACK] = screening.score_hidden(step.hidden)[0]
                            verdict = monitor.check_prompt(values)
                        if guarded and verdict == CONTINUE:
                            verdict = monitor.check_token(index, readout)
                        if verdict != CONTINUE:
                            if not readouts and readout:
                                readouts.append(readout)  # keep prompt_last: it is what tripped the guard
                            break
                        text = decoder.decode(backend.token_bytes(step.token))
                        new = [e.to_dict() for e in monitor.events[reported:]]
                        reported = len(monitor.events)
                        # Pieces that could begin a stop string ("\nUser:") wait until the next tokens decide.
                        yield from show(stops.push(text, (readout, new)))
                        if stops.stopped:
                            break
                finally:
                    stream.close()
                if verdict == CONTINUE:
                    yield from show(stops.flush())
                tail = "" if stops.stopped else decoder.decode(b"", final=True)
                if tail and pieces:
                    pieces[-1] += tail
                events += monitor.events
                pending = [e.to_dict() for e in monitor.events[reported:]]
                if verdict == REGENERATE and attempt < policy.max_retries:
                    attempt += 1
                    extra_steer = {**extra_steer, **monitor.counter_steering()}
                    yield StreamEvent("reset", guard=pending)
                    continue
                blocked = verdict in (BLOCK, REGENERATE)
                stopped_text = refusal = ""
                if blocked:
                    refusal = refusal_text(policy, monitor.trigger)
                    stopped_text, pieces = "".join(pieces) + stops.held_text(), []
                    yield StreamEvent("replace", refusal, guard=pending)
                elif pending:
                    yield StreamEvent("guard", guard=pending)
                break
        total = time.perf_counter() - started
        reply = refusal if blocked else "".join(pieces)
        if record:
            self.history.append(Turn(message, reply))
        turn = len(self.history)
        event_dicts = [e.to_dict() for e in events]
        if record:  # candidates (best-of-N) and scratch replies stay out of the session's log
            self.guard_log.extend({**e, "turn": turn} for e in event_dicts)
        result = ChatResult(
            persona=self.persona.id,
            model=backend.model_id,
            reply=reply,
            tokens=pieces,
            steering=steer,
            probes=_probe_summary(readouts),
            guard={
                "events": event_dicts,
                "blocked": blocked,
                "attempts": attempt + 1,
                "policy": policy.name,
                **({"stopped_text": stopped_text} if blocked else {}),
            },
            notices=[*getattr(backend, "notices", []), *plan.notices],
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
