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
    "Playground": "chat.session",
    "ChatSession": "chat.session",
    "ChatResult": "chat.session",
    "StreamEvent": "chat.session",
    "Catalog": "definitions.personas",
    "Persona": "definitions.personas",
    "RoleModel": "definitions.personas",
    "validate_file": "definitions.validation",
    "load_trait": "definitions.traits",
    "TraitDefinition": "definitions.traits",
    "load_backend": "backends",
    "Backend": "backends",
    "Steering": "backends.base",
    "Intervention": "backends.base",
    "Interventions": "backends.base",
    "TraitVector": "steering.vectors",
    "VectorStore": "steering.store",
    "ProbeSet": "steering.probes",
    "build_steering": "steering.probes",
    "extract_trait": "steering.extraction",
    "Policy": "guard.policy",
    "SignalRule": "guard.policy",
    "load_policy": "guard.policy",
    "GuardEvent": "guard.policy",
    "GuardMonitor": "guard.policy",
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
    from .chat.session import ChatResult, ChatSession, Playground, StreamEvent
    from .definitions.personas import Catalog, Persona, RoleModel
    from .definitions.traits import TraitDefinition, load_trait
    from .definitions.validation import validate_file
    from .errors import Issue, ModelError, NotFoundError, PlaygroundError, ValidationError
    from .guard.policy import GuardEvent, GuardMonitor, Policy, SignalRule, load_policy
    from .steering.extraction import extract_trait
    from .steering.probes import ProbeSet, build_steering
    from .steering.store import VectorStore
    from .steering.vectors import TraitVector
