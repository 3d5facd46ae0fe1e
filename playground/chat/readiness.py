"""What the running model lacks: its own chat template, and the instruments that exist per model (trait probes
and steering vectors, the prompt screen); a model nobody prepared has none of them. ``model_notices`` names each
missing one and the command that makes it, so that nothing disappears silently (they go into every reply's
``notices``: CLI JSON, API and UI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..guard.model_thresholds import MEASURED_ON, is_shipped_policy, measured_thresholds, reply_signals
from ..guard.policy import HIJACK
from ..prompt.chat_template import FALLBACK_NOTICE

if TYPE_CHECKING:
    from .session import Playground


def _model_arg(pg: Playground) -> str:
    source = getattr(pg.backend, "source", None)
    path = getattr(source, "path", None)
    return str(path) if path is not None else pg.backend.model_id


def missing_traits(pg: Playground) -> list[str]:
    """The catalog's traits that have no vector for the running model."""
    have = set(pg.vectors.names())
    return sorted(t for t in pg.catalog.trait_files() if t not in have)


def _prepare(model: str, traits: list[str] | None = None, extra: str = "") -> str:
    subset = f" --traits {','.join(traits)}" if traits else ""
    return f"python -m playground prepare --model {model}{subset}{extra}"


def model_notices(pg: Playground) -> list[str]:
    """The probes' own notices plus one per missing instrument of the running model (empty when prepared)."""
    notices = list(pg.probes.notices())
    if getattr(pg.backend.template, "is_fallback", False):
        notices.append(FALLBACK_NOTICE)
    model, name = _model_arg(pg), pg.backend.model_id
    missing = missing_traits(pg)
    if missing and not pg.vectors.names():
        notices.append(
            f"no trait vectors for {name}: no probe readouts, no steering and no per-token guardrails. Make "
            f"them all (traits, prompt screen, guard thresholds; resumable) with: {_prepare(model)}"
        )
    elif missing:
        notices.append(
            f"no vectors for {', '.join(missing)} on {name} (no readout or steering for them): "
            f"{_prepare(model, missing)}"
        )
    policy = pg.policies.policy
    if policy.screen_prompt and HIJACK in policy.rules and pg.screening is None:
        notices.append(
            f"no prompt screen (persona-hijack probe) for {name}: messages are not screened. Train one with: "
            f"python -m playground train-screen --model {model} (or {_prepare(model)})"
        )
    read = [s for s in reply_signals(policy) if s in pg.vectors.names()]
    if read and is_shipped_policy(policy) and name != MEASURED_ON and measured_thresholds(name) is None:
        notices.append(
            f"the guard's reply thresholds ({', '.join(read)}) were measured on {MEASURED_ON}, not on {name}: "
            f"its probes may read on another scale, so warnings can come too early or not at all. Measure this "
            f"model's with: python -m playground guard-thresholds --model {model} (~8 min; {_prepare(model)} "
            "includes it)"
        )
    return notices


__all__ = ["missing_traits", "model_notices"]
