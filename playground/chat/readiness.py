"""What the running model lacks: its own chat template, and the instruments that exist per model (trait probes
and steering vectors, the prompt screen); a model nobody prepared has none of them. ``model_notices`` names each
missing one and the command that makes it, so that nothing disappears silently (they go into every reply's
``notices``: CLI JSON, API and UI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def model_notices(pg: Playground) -> list[str]:
    """The probes' own notices plus one per missing instrument of the running model (empty when prepared)."""
    notices = list(pg.probes.notices())
    if getattr(pg.backend.template, "is_fallback", False):
        notices.append(FALLBACK_NOTICE)
    model, name = _model_arg(pg), pg.backend.model_id
    missing = missing_traits(pg)
    if missing and not pg.vectors.names():
        notices.append(
            f"no trait vectors for {name}: no probe readouts, no steering and no per-token guardrails. Make them "
            f"with: python -m playground extract --model {model} --trait TRAIT (for each of {', '.join(missing)}), "
            f"then python -m playground calibrate --model {model}"
        )
    elif missing:
        notices.append(
            f"no vectors for {', '.join(missing)} on {name} (no readout or steering for them): python -m "
            f"playground extract --model {model} --trait TRAIT"
        )
    policy = pg.policies.policy
    if policy.screen_prompt and HIJACK in policy.rules and pg.screening is None:
        notices.append(
            f"no prompt screen (persona-hijack probe) for {name}: messages are not screened. Train one with: "
            f"python -m playground train-screen --model {model}"
        )
    return notices


__all__ = ["missing_traits", "model_notices"]
