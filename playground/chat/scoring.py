"""Probe readouts over a reply someone else wrote: teacher-forced, unsteered (for scoring transcripts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..definitions.personas import Persona
from ..errors import PlaygroundError
from ..prompt.conversation import plan_prompt
from ..steering.probes import summarize
from .reply import ChatResult

if TYPE_CHECKING:
    from .session import Playground


def score_reply(pg: Playground, persona: str | Persona, message: str, reply: str) -> ChatResult:
    """What the probes read over ``reply`` given as the persona's answer to ``message``."""
    session = pg.session(persona)
    backend = pg.backend
    with pg.generation_lock:
        plan = plan_prompt(backend, session.persona, session.system_prompt, [], message, 1)
        reply_tokens = backend.tokenize(reply)
        if not reply_tokens:
            raise PlaygroundError("the reply to score is empty")
        probes = pg.probes
        rows = backend.hidden_states(plan.tokens + reply_tokens, probes.layers) if probes else {}
    start = len(plan.tokens) - 1
    scored = probes.score_rows({l: r[start : start + len(reply_tokens)] for l, r in rows.items()})
    return ChatResult(
        persona=session.persona.id,
        model=backend.model_id,
        reply=reply,
        tokens=[backend.token_bytes(t).decode("utf-8", errors="replace") for t in reply_tokens],
        probes=probes.annotate(summarize(scored, {t: v[0] for t, v in scored.items()})),
        prompt_tokens=len(plan.tokens),
    )
