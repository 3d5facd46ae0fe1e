"""Guardrails on activations: a policy maps signal readouts to actions, checked before and during a reply.

Signals are the calibrated trait probes (``evil``, ``persona_drift``, ...; 0 = typical assistant) and
``hijack``, the prompt-screening probe (``playground.guard.screening``; 0 = typical benign prompt). A rule gives
a ``warn`` and an ``act`` threshold and an action:

- ``flag`` — record the event, change nothing;
- ``cap`` — from the next token on, clamp the trait's projection at the threshold
  (``h <- h - max(0, h.u - tau) u``) at the probe layer and the steering layer;
- ``counter_steer`` — from the next token on, add ``-strength`` of the trait's steering vector;
- ``regenerate`` — stop, and write the reply again with counter-steering (``max_retries`` times, then block);
- ``block`` — stop the stream and replace the reply with a short refusal that says why.

``hijack`` has no direction of its own to cap or steer: for it, ``cap`` / ``counter_steer`` /
``regenerate`` act on ``persona_drift`` (the way a hijack shows in the residual stream).

Checks run at the last prompt token (phase ``prompt``, before any text is shown) and on every generated
token (phase ``reply``, on the mean of the last ``window`` readouts). With ``baseline: persona`` a
threshold counts from the persona's own typical readout (measured once on a few neutral questions), so a
pirate persona can be a pirate without tripping ``persona_drift``; a negative baseline gives no extra room.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Intervention, Interventions
from ..definitions.checks import check_document
from ..definitions.personas import SHIPPED_PERSONAS, Catalog
from ..definitions.yaml_source import load_yaml_bytes, load_yaml_file
from ..errors import Issue, ValidationError
from ..steering.addition import steering_scale
from ..steering.vectors import TraitVector

DEFAULT_POLICY_PATH = SHIPPED_PERSONAS / "policies" / "default.yaml"
DRIFT = "persona_drift"
HIJACK = "hijack"
PROMPT_ONLY = frozenset({HIJACK})
DEFAULT_REFUSAL = "I stopped this reply because it was drifting away from the character it should keep."


@dataclass(frozen=True)
class SignalRule:
    signal: str
    warn: float | None = None
    act: float | None = None
    action: str = "flag"
    strength: float = 0.5
    phase: str = "both"

    def checks(self, phase: str) -> bool:
        if self.signal in PROMPT_ONLY:
            return phase == "prompt"
        return self.phase in (phase, "both")


@dataclass(frozen=True)
class Policy:
    name: str = "none"
    rules: dict[str, SignalRule] = field(default_factory=dict)
    screen_prompt: bool = True
    max_retries: int = 1
    refusal: str = DEFAULT_REFUSAL
    baseline: str = "persona"
    window: int = 4
    source: str = "<built-in>"

    def merged(self, override: Mapping[str, Any] | None) -> Policy:
        """This policy with a persona's ``guard:`` block laid over it (rule fields override one by one)."""
        if not override:
            return self
        rules = dict(self.rules)
        for name, fields in (override.get("signals") or {}).items():
            base = rules.get(name, SignalRule(name))
            rules[name] = replace(base, **{k: v for k, v in fields.items() if k in _RULE_FIELDS})
        keys = ("screen_prompt", "max_retries", "refusal", "baseline", "window")
        scalars = {k: override[k] for k in keys if k in override}
        return replace(self, rules=rules, **scalars)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "screen_prompt": self.screen_prompt,
            "baseline": self.baseline,
            "window": self.window,
            "max_retries": self.max_retries,
            "signals": {
                n: {"warn": r.warn, "act": r.act, "action": r.action, "strength": r.strength, "phase": r.phase}
                for n, r in sorted(self.rules.items())
            },
        }


_RULE_FIELDS = ("warn", "act", "action", "strength", "phase")


def policy_from_data(data: Mapping[str, Any], source: str) -> Policy:
    rules = {
        name: SignalRule(name, **{k: v for k, v in (fields or {}).items() if k in _RULE_FIELDS})
        for name, fields in (data.get("signals") or {}).items()
    }
    return Policy(
        name=str(data.get("name") or Path(source).stem),
        rules=rules,
        screen_prompt=bool(data.get("screen_prompt", True)),
        max_retries=int(data.get("max_retries", 1)),
        refusal=str(data.get("refusal") or DEFAULT_REFUSAL),
        baseline=str(data.get("baseline") or "persona"),
        window=int(data.get("window") or 4),
        source=source,
    )


def parse_policy(raw: bytes, name: str, catalog: Catalog | None = None) -> Policy:
    """Validate policy YAML; raise ValidationError with file:line:col issues."""
    doc = load_yaml_bytes(raw, name)
    issues = check_document(doc, Path(name), catalog or Catalog(), kind="policy")
    if not issues and not isinstance(doc.data, dict):
        issues = [doc.issue((), "a policy file must be a mapping of fields")]
    if issues:
        raise ValidationError(issues)
    return policy_from_data(doc.data, name)


def load_policy(path: str | Path, catalog: Catalog | None = None) -> Policy:
    p = Path(path)
    doc = load_yaml_file(p)
    issues = check_document(doc, p, catalog or Catalog(), kind="policy")
    if issues:
        raise ValidationError(issues)
    return policy_from_data(doc.data, str(p))


class PolicyHolder:
    """The global policy in force. A reload or edit that fails validation keeps the previous valid policy."""

    def __init__(self, path: str | Path | None = DEFAULT_POLICY_PATH, catalog: Catalog | None = None):
        self.path = Path(path) if path else None
        self.catalog = catalog or Catalog()
        self.last_issues: list[Issue] = []
        self._policy = load_policy(self.path, self.catalog) if self.path else Policy()

    @classmethod
    def fixed(cls, policy: Policy, catalog: Catalog | None = None) -> PolicyHolder:
        """A holder of one given policy, not backed by a file (evaluations compare policies this way)."""
        holder = cls(None, catalog)
        holder._policy = policy
        return holder

    @property
    def policy(self) -> Policy:
        return self._policy

    def reload(self) -> list[Issue]:
        """Re-read the file; on errors keep the policy in force and return the issues."""
        if self.path is None:
            return []
        try:
            self._policy = load_policy(self.path, self.catalog)
            self.last_issues = []
        except ValidationError as exc:
            self.last_issues = exc.issues
        return self.last_issues

    def use_text(self, text: str, name: str = "<policy>") -> list[Issue]:
        """Adopt policy YAML typed in the UI, if valid."""
        try:
            self._policy = parse_policy(text.encode("utf-8"), name, self.catalog)
            self.last_issues = []
        except ValidationError as exc:
            self.last_issues = exc.issues
        return self.last_issues


@dataclass(frozen=True)
class GuardEvent:
    signal: str
    value: float
    threshold: float
    token_index: int  # -1 for the prompt phase
    action: str  # 'warn' for warnings, else the rule's action
    phase: str  # 'prompt' | 'reply'
    level: str  # 'warn' | 'act'
    attempt: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "value": round(self.value, 3),
            "threshold": round(self.threshold, 3),
            "token_index": self.token_index,
            "action": self.action,
            "phase": self.phase,
            "level": self.level,
            "attempt": self.attempt,
        }

    def describe(self) -> str:
        return describe_guard_event(self.to_dict())


CONTINUE, BLOCK, REGENERATE = "continue", "block", "regenerate"


class GuardMonitor:
    """Checks one reply attempt against a policy and switches interventions on when a rule acts."""

    def __init__(
        self,
        policy: Policy,
        vectors: Mapping[str, TraitVector],
        interventions: Interventions,
        *,
        baseline: Mapping[str, float] | None = None,
        prompt_baseline: Mapping[str, float] | None = None,
        attempt: int = 0,
    ):
        self.policy = policy
        self.vectors = vectors
        self.interventions = interventions
        self.attempt = attempt
        self.events: list[GuardEvent] = []
        self._baseline = dict(baseline or {})
        self._prompt_baseline = dict(prompt_baseline or {})
        self._fired: set[tuple[str, str, str]] = set()
        self._recent: dict[str, deque[float]] = {}
        self.trigger: GuardEvent | None = None  # the event that stopped the reply, if any

    def _room(self, signal: str, phase: str) -> float:
        if self.policy.baseline != "persona":
            return 0.0
        base = (self._prompt_baseline if phase == "prompt" else self._baseline).get(signal, 0.0)
        return max(0.0, float(base))

    def target(self, signal: str) -> str | None:
        """The vector an action on ``signal`` uses (hijack acts through persona_drift)."""
        name = DRIFT if signal in PROMPT_ONLY else signal
        return name if name in self.vectors else None

    def check_prompt(self, values: Mapping[str, float]) -> str:
        return self._check(values, -1, "prompt")

    def check_token(self, index: int, values: Mapping[str, float]) -> str:
        smoothed = {}
        for signal, value in values.items():
            window = self._recent.setdefault(signal, deque(maxlen=self.policy.window))
            window.append(float(value))
            smoothed[signal] = float(np.mean(window))
        return self._check(smoothed, index, "reply")

    def _check(self, values: Mapping[str, float], index: int, phase: str) -> str:
        verdict = CONTINUE
        for signal, rule in self.policy.rules.items():
            if signal not in values or not rule.checks(phase):
                continue
            value, room = float(values[signal]), self._room(signal, phase)
            for level, limit in (("act", rule.act), ("warn", rule.warn)):
                if limit is None or value < limit + room:
                    continue
                key = (signal, level, phase)
                if key in self._fired:
                    break
                self._fired.add(key)
                if level == "act":
                    self._fired.add((signal, "warn", phase))  # the action implies the warning: never log it after
                action = rule.action if level == "act" else "warn"
                event = GuardEvent(signal, value, limit + room, index, action, phase, level, self.attempt)
                self.events.append(event)
                if level == "act":
                    verdict = self._act(rule, event, verdict)
                break  # an act event implies the warning; don't log both
        return verdict

    def _act(self, rule: SignalRule, event: GuardEvent, verdict: str) -> str:
        if rule.action == "block":
            self.trigger = self.trigger or event
            return BLOCK
        if rule.action == "regenerate":
            if verdict != BLOCK:
                self.trigger = self.trigger or event
                return REGENERATE
            return verdict
        name = self.target(rule.signal)
        if name is None:
            return verdict
        vec = self.vectors[name]
        if rule.action == "cap":
            mean_z = event.threshold if name == rule.signal else 0.0
            for layer in sorted({l for l in (vec.probe_layer, vec.steer_layer) if l is not None}):
                mean, std = vec.calibration.get(layer, (0.0, 1.0))
                self.interventions.add(Intervention(layer, vec.unit(layer), "cap", mean + mean_z * std))
        elif rule.action == "counter_steer" and vec.steer_layer is not None:
            layer = vec.steer_layer
            amount = -rule.strength * steering_scale(vec, layer)
            self.interventions.add(Intervention(layer, vec.unit(layer), "add", amount))
        return verdict

    def counter_steering(self) -> dict[str, float]:
        """Strengths a regenerate attempt adds, from the rule that asked for it."""
        if self.trigger is None:
            return {}
        rule = self.policy.rules[self.trigger.signal]
        name = self.target(rule.signal)
        return {name: -rule.strength} if name else {}


def refusal_text(policy: Policy, event: GuardEvent | None) -> str:
    if event is None:
        return policy.refusal
    return f"{policy.refusal} ({event.describe()})"


def describe_guard_event(event: Mapping[str, Any]) -> str:
    """One line for a guard event dict (as in ``guard.events``)."""
    where = "prompt" if event["phase"] == "prompt" else f"token {event['token_index']}"
    verb = "warning" if event["level"] == "warn" else event["action"]
    return f"{event['signal']} {event['value']:.1f} ≥ {event['threshold']:.1f} at {where}: {verb}"
