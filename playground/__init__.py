"""Persona Playground: YAML personas, persona vectors (probes and steering) and guardrails for local models.

The public API, importable from ``playground`` directly (loaded lazily, so ``import playground`` stays cheap):

- chat: ``Playground``, ``ChatSession``, ``ChatResult``, ``StreamEvent``
- definitions: ``Catalog``, ``Persona``, ``RoleModel``, ``validate_file``, ``load_trait``, ``TraitDefinition``
- models: ``load_backend``, ``Backend``, ``Steering``, ``Intervention``, ``Interventions``
- vectors: ``TraitVector``, ``VectorStore``, ``ProbeSet``, ``build_steering``, ``extract_trait``
- guardrails: ``Policy``, ``SignalRule``, ``load_policy``, ``GuardEvent``, ``GuardMonitor``
- errors: ``PlaygroundError``, ``ValidationError``, ``NotFoundError``, ``ModelError``, ``Issue``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Playground": "session",
    "ChatSession": "session",
    "ChatResult": "session",
    "StreamEvent": "session",
    "Catalog": "personas",
    "Persona": "personas",
    "RoleModel": "personas",
    "validate_file": "validation",
    "load_trait": "traits",
    "TraitDefinition": "traits",
    "load_backend": "backends",
    "Backend": "backends",
    "Steering": "backends.base",
    "Intervention": "backends.base",
    "Interventions": "backends.base",
    "TraitVector": "vectors",
    "VectorStore": "vector_store",
    "ProbeSet": "probes",
    "build_steering": "probes",
    "extract_trait": "extraction",
    "Policy": "guard",
    "SignalRule": "guard",
    "load_policy": "guard",
    "GuardEvent": "guard",
    "GuardMonitor": "guard",
    "PlaygroundError": "errors",
    "ValidationError": "errors",
    "NotFoundError": "errors",
    "ModelError": "errors",
    "Issue": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'playground' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .backends import Backend, load_backend
    from .backends.base import Intervention, Interventions, Steering
    from .errors import Issue, ModelError, NotFoundError, PlaygroundError, ValidationError
    from .extraction import extract_trait
    from .guard import GuardEvent, GuardMonitor, Policy, SignalRule, load_policy
    from .personas import Catalog, Persona, RoleModel
    from .probes import ProbeSet, build_steering
    from .session import ChatResult, ChatSession, Playground, StreamEvent
    from .traits import TraitDefinition, load_trait
    from .validation import validate_file
    from .vector_store import VectorStore
    from .vectors import TraitVector
