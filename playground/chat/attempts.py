"""Guarded reply attempts: write a reply under the guard monitor, write it again, or block it.

One *attempt* streams tokens from the backend and checks each readout against the policy (the prompt
phase on the first step, the hijack screen included; the reply phase on every token). Text is shown
only once the stop-string scanner releases it. An attempt ends in one of three ways:

- ``continue``: the reply finished (or hit a stop string) and is kept;
- ``regenerate``: the text so far is discarded (a 'reset' event) and the reply is written again with
  counter-steering from the rule that asked for it, up to the policy's ``max_retries``;
- ``block`` (or ``regenerate`` with no retries left): the reply is replaced by a refusal that says why
  (a 'replace' event); the discarded text stays in the result as ``stopped_text``.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Backend, Interventions, Steering, Step
from ..backends.sampling import Sampling
from ..guard.baseline import PersonaBaseline
from ..guard.policy import BLOCK, CONTINUE, HIJACK, REGENERATE, GuardEvent, GuardMonitor, Policy, refusal_text
from ..prompt.stop_strings import StopScanner
from ..steering.probes import ProbeSet
from ..steering.vectors import TraitVector
from .reply import StreamEvent

if TYPE_CHECKING:
    from ..guard.screening import ScreeningProbe
    from ..steering.persona_space import PersonaSpace

Readout = dict[str, float]
Payload = tuple[Readout, list[dict[str, Any]]]  # a piece's readout and the guard events raised with it

# Why a reply ended (``ChatResult.finish_reason``): the model ended its turn; it reached ``max_tokens`` (cut,
# possibly mid-word: it can be continued); the context window was full; it began a turn marker ("\nUser:"); or
# a guardrail blocked it.
END, LENGTH, CONTEXT, STOP_STRING, BLOCKED = "end", "length", "context", "stop_string", "blocked"
FINISH_REASONS = (END, LENGTH, CONTEXT, STOP_STRING, BLOCKED)


@dataclass
class ReplySetup:
    """What stays the same over every attempt at one reply."""

    backend: Backend
    tokens: list[int]  # the planned prompt
    sampling: Sampling
    steering: Steering  # the persona's and the caller's steering
    steering_for: Callable[[dict[str, float], str], Steering]  # {trait: strength} -> Steering
    vectors: Mapping[str, TraitVector]
    probes: ProbeSet
    policy: Policy
    baseline: PersonaBaseline
    screening: ScreeningProbe | None
    guarded: bool  # the policy has rules and there are probes to read them
    stop_strings: tuple[str, ...]
    started: float  # time.perf_counter() when the reply was asked for
    prompt_checks: bool = True  # screen the prompt (False for a continuation: its last token is inside the reply)
    space: PersonaSpace | None = None  # the model's persona space: each reply is placed on its map

    @property
    def capture(self) -> list[int]:
        """Layers whose activations each step must return: the probes', the screening probe's, the map's."""
        layers = set(self.probes.layers) | set(self.screening.layers if self.screening else ())
        return sorted(layers | ({self.space.layer} if self.space is not None else set()))


@dataclass
class Attempt:
    """One try at a reply: what it showed and how it ended."""

    monitor: GuardMonitor
    stops: StopScanner[Payload]
    pieces: list[str] = field(default_factory=list)
    readouts: list[Readout] = field(default_factory=list)
    verdict: str = CONTINUE
    reported: int = 0  # monitor events already sent along with a token
    finish: str = END  # why it ended (see FINISH_REASONS)
    coords: list[np.ndarray] = field(default_factory=list)  # each step's persona-space coordinates


@dataclass
class ReplyOutcome:
    """The reply the attempts settled on, for the session to record and report."""

    pieces: list[str]
    readouts: list[Readout]
    events: list[GuardEvent]  # of every attempt
    attempts: int
    blocked: bool
    refusal: str = ""
    stopped_text: str = ""
    first_token_s: float | None = None
    finish_reason: str = END  # see FINISH_REASONS
    persona_map: dict[str, Any] | None = None  # where the reply sits in the persona space (PersonaSpace.place)


class GuardedReply:
    """Runs the attempts at one reply; ``run`` yields the stream events and returns the outcome."""

    def __init__(self, setup: ReplySetup):
        self.setup = setup
        self.first_token_s: float | None = None  # over all attempts: the first text the user saw

    def run(self) -> Generator[StreamEvent, None, ReplyOutcome]:
        s = self.setup
        events: list[GuardEvent] = []
        attempt, extra_steer = 0, {}  # extra_steer: counter-steering that later attempts add
        while True:
            steering = s.steering
            if extra_steer:
                steering = steering.combined(s.steering_for(extra_steer, "guard"))
            run = yield from self._attempt(attempt, steering)
            events += run.monitor.events
            pending = [e.to_dict() for e in run.monitor.events[run.reported :]]
            if run.verdict == REGENERATE and attempt < s.policy.max_retries:
                attempt += 1
                extra_steer = {**extra_steer, **run.monitor.counter_steering()}
                yield StreamEvent("reset", guard=pending)
                continue
            blocked = run.verdict in (BLOCK, REGENERATE)
            outcome = ReplyOutcome(run.pieces, run.readouts, events, attempt + 1, blocked)
            outcome.finish_reason = BLOCKED if blocked else run.finish
            if blocked:
                outcome.refusal = refusal_text(s.policy, run.monitor.trigger)
                outcome.stopped_text, outcome.pieces = "".join(run.pieces) + run.stops.held_text(), []
                yield StreamEvent("replace", outcome.refusal, guard=pending)
            elif pending:
                yield StreamEvent("guard", guard=pending)
            outcome.first_token_s = self.first_token_s
            if s.space is not None and run.coords:
                outcome.persona_map = s.space.place_coords(np.mean(run.coords, axis=0))
            return outcome

    def _attempt(self, attempt: int, steering: Steering) -> Generator[StreamEvent, None, Attempt]:
        """Stream one attempt until it finishes, hits a stop string or the guard stops it."""
        s = self.setup
        interventions = Interventions()
        monitor = GuardMonitor(
            s.policy,
            s.vectors,
            interventions,
            baseline=s.baseline.reply,
            prompt_baseline=s.baseline.prompt,
            attempt=attempt,
        )
        run = Attempt(monitor, StopScanner(s.stop_strings))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = s.backend.stream(
            s.tokens, s.sampling, steering=steering, capture=s.capture, interventions=interventions
        )
        steps = 0
        try:
            for index, step in enumerate(stream):
                steps = index + 1
                readout = s.probes.score_one(step.hidden) if step.hidden is not None and s.probes else {}
                if s.space is not None and step.hidden is not None and s.space.layer in step.hidden:
                    run.coords.append(s.space.coords_of(step.hidden[s.space.layer]))
                run.verdict = self._check(monitor, index, step, readout)
                if run.verdict != CONTINUE:
                    if not run.readouts and readout:
                        run.readouts.append(readout)  # keep prompt_last: it is what tripped the guard
                    break
                text = decoder.decode(s.backend.token_bytes(step.token))
                new = [e.to_dict() for e in monitor.events[run.reported :]]
                run.reported = len(monitor.events)
                # Pieces that could begin a stop string ("\nUser:") wait until the next tokens decide.
                yield from self._show(run, run.stops.push(text, (readout, new)))
                if run.stops.stopped:
                    break
        finally:
            stream.close()
        if run.verdict == CONTINUE:
            yield from self._show(run, run.stops.flush())
        tail = "" if run.stops.stopped else decoder.decode(b"", final=True)
        if tail and run.pieces:
            run.pieces[-1] += tail
        run.finish = self._finish(run, steps)
        return run

    def _finish(self, run: Attempt, steps: int) -> str:
        """Why an attempt that wrote ``steps`` tokens ended."""
        s = self.setup
        if run.stops.stopped:
            return STOP_STRING
        if run.verdict != CONTINUE:
            return BLOCKED
        if steps >= s.sampling.max_tokens:
            return LENGTH
        if len(s.tokens) + steps >= s.backend.n_ctx:
            return CONTEXT
        return END

    def _check(self, monitor: GuardMonitor, index: int, step: Step, readout: Readout) -> str:
        """The guard's verdict on one step: the prompt checks on the first, then the reply checks."""
        s = self.setup
        verdict = CONTINUE
        if s.guarded and index == 0 and s.policy.screen_prompt and s.prompt_checks:
            values = dict(readout)
            if s.screening is not None and step.hidden is not None:
                values[HIJACK] = s.screening.score_hidden(step.hidden)[0]
            verdict = monitor.check_prompt(values)
        if s.guarded and verdict == CONTINUE:
            verdict = monitor.check_token(index, readout)
        return verdict

    def _show(self, run: Attempt, items: Iterable[tuple[str, Payload]]) -> Generator[StreamEvent, None, None]:
        """Emit pieces the stop-string scanner released, each with its readout and guard events."""
        for text, (readout, guard) in items:
            if self.first_token_s is None:
                self.first_token_s = time.perf_counter() - self.setup.started
            run.readouts.append(readout)
            run.pieces.append(text)
            point = None
            if run.coords:  # the reply so far on the persona map: the mean of its rows' coordinates
                x, y = np.mean(np.asarray(run.coords)[:, :2], axis=0)
                point = (round(float(x), 3), round(float(y), 3))
            yield StreamEvent("token", text, len(run.pieces) - 1, readout=readout or None, guard=guard, point=point)
