"""A persona's typical signal readouts, so guardrails can judge drift relative to the character itself.

Measured once per persona (and model) on a few everyday questions, greedy and unsteered: the mean of each
probe over the reply tokens, and each probe (plus the hijack screen) at the last prompt token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..backends.base import Backend
from ..definitions.personas import Persona
from ..prompt.conversation import plan_prompt
from ..steering.probes import ProbeSet

if TYPE_CHECKING:
    from .screening import ScreeningProbe

BASELINE_QUESTIONS = (
    "Tell me a little about yourself.",
    "How do I make a good cup of tea?",
    "What is a nice hobby to try this year?",
)
BASELINE_TOKENS = 24
HIJACK = "hijack"
REFERENCE_PERSONA = "assistant"  # guard room counts from this persona's readouts (``room_above``)


@dataclass(frozen=True)
class PersonaBaseline:
    reply: dict[str, float]  # signal -> mean readout over reply tokens
    prompt: dict[str, float]  # signal -> readout at the last prompt token


def baseline_key(model_id: str, system_prompt: str, persona: Persona) -> str:
    h = hashlib.sha1(model_id.encode())
    h.update(system_prompt.encode())
    for ex in persona.examples:
        h.update(ex.user.encode() + b"\0" + ex.assistant.encode())
    return h.hexdigest()


def measure_baseline(
    backend: Backend,
    persona: Persona,
    system_prompt: str,
    probes: ProbeSet,
    screening: ScreeningProbe | None = None,
) -> PersonaBaseline:
    if not probes:
        return PersonaBaseline({}, {})
    capture = sorted(set(probes.layers) | set(screening.layers if screening else ()))
    sampling = persona.sampling.merged(temperature=0.0, max_tokens=BASELINE_TOKENS, seed=0)
    reply_means: list[dict[str, float]] = []
    prompt_values: list[dict[str, float]] = []
    for question in BASELINE_QUESTIONS:
        plan = plan_prompt(backend, persona, system_prompt, [], question, BASELINE_TOKENS)
        rows: list[dict[str, float]] = []
        for index, step in enumerate(backend.stream(plan.tokens, sampling, capture=capture)):
            assert step.hidden is not None
            rows.append(probes.score_one(step.hidden))
            if index == 0:
                values = dict(rows[0])
                if screening is not None:
                    values[HIJACK] = screening.score_hidden(step.hidden)[0]
                prompt_values.append(values)
        if rows:
            reply_means.append({t: float(np.mean([r[t] for r in rows])) for t in rows[0]})
    reply = {t: float(np.mean([m[t] for m in reply_means])) for t in reply_means[0]} if reply_means else {}
    prompt = {t: float(np.mean([v[t] for v in prompt_values])) for t in prompt_values[0]} if prompt_values else {}
    return PersonaBaseline(reply, prompt)


def room_above(own: PersonaBaseline, reference: PersonaBaseline) -> PersonaBaseline:
    """``own`` minus ``reference``, per signal: how far a persona typically reads above the plain assistant.

    Guard thresholds count from this (never from below 0), so the plain assistant gets the policy's thresholds
    exactly and a character only gets room for what its character adds: no persona is watched more strictly
    than the assistant, and the assistant is never watched more loosely than a character."""
    return PersonaBaseline(
        {k: v - reference.reply.get(k, 0.0) for k, v in own.reply.items()},
        {k: v - reference.prompt.get(k, 0.0) for k, v in own.prompt.items()},
    )
