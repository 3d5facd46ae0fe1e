"""A chat session: one persona, its history, and streamed replies from a shared model."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import Backend, load_backend
from ..backends.base import Steering
from ..backends.priority import BackgroundJob, Foreground
from ..backends.sampling import Sampling
from ..definitions.personas import Catalog, Persona, compose_system_prompt, render_placeholders
from ..errors import PlaygroundError
from ..guard.baseline import REFERENCE_PERSONA, PersonaBaseline, baseline_key, measure_baseline, room_above
from ..guard.model_thresholds import policy_for_model
from ..guard.policy import HIJACK, Policy, PolicyHolder
from ..prompt.conversation import PromptPlan, Turn, plan_prompt
from ..prompt.stop_strings import stop_strings_for
from ..steering.persona_space import PersonaSpace, load_space
from ..steering.probes import ProbeSet, build_steering
from ..steering.request import active_strengths
from ..steering.store import VectorStore
from .attempts import GuardedReply, ReplyOutcome, ReplySetup
from .generation_gate import GenerationGate
from .readiness import model_notices
from .reply import ChatResult, StreamEvent, probe_summary

if TYPE_CHECKING:
    from ..guard.screening import ScreeningProbe


# the ``text`` of a ``status`` stream event: why no token has come yet
WAITING = "waiting"  # the model is writing another reply
MEASURING = "measuring"  # the persona's typical readouts are measured (once per persona and process)


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
        self.generation_lock = GenerationGate(lambda: getattr(self.backend, "max_concurrent", 1))
        self.policies = (
            PolicyHolder(policy_path, self.catalog) if policy_path is not None else PolicyHolder(catalog=self.catalog)
        )
        self._baselines: dict[str, PersonaBaseline] = {}
        self._screening: ScreeningProbe | None | bool = False  # False = not looked up yet
        self._space: dict[str, PersonaSpace | None] = {}  # by model id
        # Chat first (backends/priority.py): replies are in the foreground, and a copy of this Playground made
        # for a background job (``in_background``) gives way to them and stops when the job is cancelled.
        self.foreground = Foreground()
        self.background_job: BackgroundJob | None = None

    def in_background(self, job: BackgroundJob) -> Playground:
        """This Playground (same model, vectors, policy, lock and foreground) for ``job``: its replies wait
        while a chat is written, are started again when a chat comes in mid-reply, and stop on cancel."""
        twin = copy.copy(self)
        twin.background_job = job
        return twin

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

    @property
    def persona_space(self) -> PersonaSpace | None:
        """The model's persona space (``python -m playground persona-space``), if one was built."""
        model_id = self.backend.model_id
        if model_id not in self._space:
            self._space[model_id] = load_space(model_id)
        return self._space[model_id]

    @contextmanager
    def using_policy(self, policy: Policy) -> Iterator[None]:
        """Every reply inside the block is guarded by ``policy`` instead of the global one (evaluations compare
        policies this way); the global policy is back afterwards, whatever happens inside."""
        previous = self.policies
        self.policies = PolicyHolder.fixed(policy, self.catalog)
        try:
            yield
        finally:
            self.policies = previous

    def policy_for(self, persona: Persona) -> Policy:
        """The global policy (the shipped one with this model's own reply thresholds, when measured) with the
        persona's ``guard:`` overrides."""
        return policy_for_model(self.policies.policy, self.backend.model_id).merged(persona.guard)

    def baseline_for(
        self, persona: Persona, system_prompt: str, screening: ScreeningProbe | None = None
    ) -> PersonaBaseline:
        """The persona's typical readouts (measured once per process; call with the generation lock held)."""
        key = self._baseline_key(persona, system_prompt, screening)
        if key not in self._baselines:
            self._baselines[key] = measure_baseline(self.backend, persona, system_prompt, self.probes, screening)
        return self._baselines[key]

    def _baseline_key(self, persona: Persona, system_prompt: str, screening: ScreeningProbe | None) -> str:
        return baseline_key(self.backend.model_id, system_prompt, persona) + ("+screen" if screening else "")

    def room_is_measured(self, persona: Persona, system_prompt: str, screening: ScreeningProbe | None) -> bool:
        """Whether ``guard_room`` has what it needs without measuring (the persona's and the plain assistant's
        typical readouts are known)."""
        keys = [self._baseline_key(persona, system_prompt, screening)]
        try:
            plain = self.catalog.persona(REFERENCE_PERSONA)
            keys.append(self._baseline_key(plain, self.system_prompt_for(plain), screening))
        except PlaygroundError:
            pass
        return all(k in self._baselines for k in keys)

    def guard_room(
        self, persona: Persona, system_prompt: str, screening: ScreeningProbe | None = None
    ) -> PersonaBaseline:
        """What the persona's guard thresholds count from: its typical readouts above the plain assistant's
        (``room_above``; call with the generation lock held). Without an ``assistant`` persona in the catalog,
        the persona's own readouts."""
        own = self.baseline_for(persona, system_prompt, screening)
        try:
            plain = self.catalog.persona(REFERENCE_PERSONA)
        except PlaygroundError:
            return own
        return room_above(own, self.baseline_for(plain, self.system_prompt_for(plain), screening))

    def steering_for(self, strengths: dict[str, float], source: str = "--steer") -> Steering:
        if not active_strengths(strengths):
            return Steering()
        return build_steering(strengths, self.vectors.all(), source)

    def score(self, persona: str | Persona, message: str, reply: str) -> ChatResult:
        """Probe readouts over a given reply, teacher-forced and unsteered (for scoring transcripts)."""
        from .scoring import score_reply

        return score_reply(self, persona, message, reply)

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
        self.policy: Policy | None = None  # this session's own policy (the API's ``guard``), else the global one
        self.extra_stops: list[str] = []  # stop strings of the caller's own (the API's ``stop``)

    @property
    def greeting(self) -> str:
        return render_placeholders(self.persona.greeting, self.persona.name, self.user_name)

    def clear(self) -> None:
        self.history.clear()

    def undo(self) -> Turn | None:
        return self.history.pop() if self.history else None

    def stream(self, message: str, **options: Any) -> Iterator[StreamEvent]:
        """Stream a reply token by token; the last event carries the ChatResult. Options: ``max_tokens``,
        ``temperature``, ``seed``, ``top_p``, ``steering`` (trait -> strength), ``record`` (False: the reply
        stays out of the history and the guard log) and ``prefix`` (the reply so far, which the model continues).

        Before the first token, ``status`` events say why nothing comes yet: ``waiting`` (the model is writing
        another reply) or ``measuring`` (the persona's typical readouts are measured, once per persona). A reply
        is in the foreground (``Playground.foreground``) unless the Playground belongs to a background job."""
        job = self.playground.background_job
        if job is None:
            with self.playground.foreground.active():
                yield from self._stream(message, **options)
        else:
            yield from self._stream_giving_way(job, message, options)

    def _stream_giving_way(self, job: BackgroundJob, message: str, options: dict[str, Any]) -> Iterator[StreamEvent]:
        """A background job's reply: it starts once no chat is being written and is started again (a ``reset``
        event) when a chat comes in while it is written, so the chat waits one token at most."""
        foreground = self.playground.foreground
        while True:
            job.checkpoint()
            gen = self._stream(message, **options)
            preempted = False
            try:
                for event in gen:
                    if event.kind == "token" and foreground.busy:
                        preempted = True
                        break
                    yield event
            finally:
                gen.close()  # releases the generation lock
            if not preempted:
                return
            yield StreamEvent("reset")

    def _stream(
        self,
        message: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        top_p: float | None = None,
        steering: dict[str, float] | None = None,
        record: bool = True,
        prefix: str = "",
    ) -> Iterator[StreamEvent]:
        if not message.strip():
            raise PlaygroundError("the message is empty; type something to send")
        sampling = self.persona.sampling.merged(max_tokens=max_tokens, temperature=temperature, seed=seed, top_p=top_p)
        pg = self.playground
        backend = pg.backend
        steer = {**self.persona.steering, **(steering or {})}
        steer = active_strengths(steer)
        source = f"persona '{self.persona.id}' steering" if not steering else "steering"
        steer_vectors = pg.steering_for(steer, source)
        probes = pg.probes
        policy = self.policy if self.policy is not None else pg.policy_for(self.persona)
        started = time.perf_counter()
        if not pg.generation_lock.acquire(blocking=False):
            yield StreamEvent("status", text=WAITING)
            pg.generation_lock.acquire()
        try:
            history, budget = self.history, sampling.max_tokens
            plan = plan_prompt(backend, self.persona, self.system_prompt, history, message, budget, reply_start=prefix)
            if self._will_measure(policy, probes):
                yield StreamEvent("status", text=MEASURING)
            setup = self._reply_setup(plan.tokens, sampling, steer_vectors, probes, policy, started)
            setup.prompt_checks = not prefix
            outcome = yield from GuardedReply(setup).run()
        finally:
            pg.generation_lock.release()
        total = time.perf_counter() - started
        reply = outcome.refusal if outcome.blocked else prefix + "".join(outcome.pieces)
        if record:
            self.history.append(Turn(message, reply))
        yield StreamEvent("done", result=self._result(reply, steer, policy, plan, outcome, total, record))

    def _screening_for(self, policy: Policy) -> ScreeningProbe | None:
        return self.playground.screening if policy.screen_prompt and HIJACK in policy.rules else None

    def _will_measure(self, policy: Policy, probes: ProbeSet) -> bool:
        """Whether this reply's guard first measures the persona's typical readouts (``_reply_setup``)."""
        if not (policy.rules and probes and policy.baseline == "persona"):
            return False
        return not self.playground.room_is_measured(self.persona, self.system_prompt, self._screening_for(policy))

    def _reply_setup(
        self,
        tokens: list[int],
        sampling: Sampling,
        steering: Steering,
        probes: ProbeSet,
        policy: Policy,
        started: float,
    ) -> ReplySetup:
        """What every attempt at the reply shares (call with the generation lock held: it may measure the
        persona's baseline)."""
        pg = self.playground
        screening = self._screening_for(policy)
        guarded = bool(policy.rules) and bool(probes)
        baseline = (
            pg.guard_room(self.persona, self.system_prompt, screening)
            if guarded and policy.baseline == "persona"
            else PersonaBaseline({}, {})
        )
        return ReplySetup(
            backend=pg.backend,
            tokens=tokens,
            sampling=sampling,
            steering=steering,
            steering_for=pg.steering_for,
            vectors=pg.vectors.all(),
            probes=probes,
            policy=policy,
            baseline=baseline,
            screening=screening,
            guarded=guarded,
            stop_strings=(*stop_strings_for(self.user_name, self._role_model_names()), *self.extra_stops),
            started=started,
            space=pg.persona_space,
        )

    def _role_model_names(self) -> list[str]:
        names = []
        for role in self.persona.role_models:
            try:
                names.append(self.playground.catalog.role_model(role).name)
            except PlaygroundError:  # a missing role model is reported where the prompt is composed
                continue
        return names

    def _result(
        self,
        reply: str,
        steer: dict[str, float],
        policy: Policy,
        plan: PromptPlan,
        outcome: ReplyOutcome,
        total: float,
        record: bool,
    ) -> ChatResult:
        """The finished reply; guard events of recorded replies also go to the session's log."""
        backend = self.playground.backend
        turn = len(self.history)
        event_dicts = [e.to_dict() for e in outcome.events]
        if record:  # candidates (best-of-N) and scratch replies stay out of the session's log
            self.guard_log.extend({**e, "turn": turn} for e in event_dicts)
        first_token_s = outcome.first_token_s
        return ChatResult(
            persona=self.persona.id,
            model=backend.model_id,
            reply=reply,
            tokens=outcome.pieces,
            steering=steer,
            probes=self.playground.probes.annotate(probe_summary(outcome.readouts)),
            guard={
                "events": event_dicts,
                "blocked": outcome.blocked,
                "attempts": outcome.attempts,
                "policy": policy.name,
                **({"stopped_text": outcome.stopped_text} if outcome.blocked else {}),
            },
            notices=[*getattr(backend, "notices", []), *plan.notices, *model_notices(self.playground)],
            prompt_tokens=len(plan.tokens),
            finish_reason=outcome.finish_reason,
            prefix=plan.reply_start,
            persona_map=outcome.persona_map,
            timing={
                "first_token_s": round(first_token_s if first_token_s is not None else total, 4),
                "total_s": round(total, 4),
                "tokens_per_s": round(len(outcome.pieces) / total, 2) if total > 0 else 0.0,
            },
        )

    def send(self, message: str, **options: Any) -> ChatResult:
        result = None
        for event in self.stream(message, **options):
            if event.kind == "done":
                result = event.result
        assert result is not None
        return result
