"""Guard policy loading and the per-token monitor, without a model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from playground.backends.base import Intervention, Interventions
from playground.errors import ValidationError
from playground.guard.policy import (
    BLOCK,
    CONTINUE,
    DEFAULT_POLICY_PATH,
    REGENERATE,
    GuardMonitor,
    Policy,
    PolicyHolder,
    SignalRule,
    load_policy,
    parse_policy,
)
from playground.steering.vectors import TraitVector

from .conftest import FIXTURES


def _vec(name: str, d: int = 4) -> TraitVector:
    direction = np.zeros(d, dtype=np.float32)
    direction[0] = 2.0
    return TraitVector(
        directions={3: direction, 5: direction * 2},
        trait=name,
        model_id="tiny",
        probe_layer=5,
        steer_layer=3,
        calibration={3: (1.0, 0.5), 5: (2.0, 4.0)},
        steer_scale={3: 10.0, 5: 20.0},
    )


VECTORS = {"evil": _vec("evil"), "persona_drift": _vec("persona_drift")}


def _policy(**rules: SignalRule) -> Policy:
    return Policy(name="t", rules=dict(rules), window=1)


def test_intervention_cap_and_add():
    unit = np.array([1.0, 0.0], dtype=np.float32)
    rows = np.array([[5.0, 1.0], [0.5, 2.0]], dtype=np.float32)
    Intervention(0, unit, "cap", 1.0).apply(rows)
    assert rows.tolist() == [[1.0, 1.0], [0.5, 2.0]]  # only the projection above 1 is removed
    Intervention(0, unit, "add", -2.0).apply(rows)
    assert rows.tolist() == [[-1.0, 1.0], [-1.5, 2.0]]
    ivs = Interventions()
    assert not ivs and ivs.layers() == set()
    ivs.add(Intervention(4, unit, "cap", 0.0))
    assert ivs.layers() == {4} and not ivs.apply(3, rows) and ivs.apply(4, rows)


def test_shipped_policy_loads():
    policy = load_policy(DEFAULT_POLICY_PATH)
    assert {"hijack", "evil", "persona_drift"} <= set(policy.rules)
    assert policy.baseline == "persona" and policy.screen_prompt


def test_bad_policy_reports_lines_and_keeps_previous(tmp_path):
    with pytest.raises(ValidationError) as err:
        load_policy(FIXTURES / "bad" / "bad_policy.yaml")
    text = "\n".join(str(i) for i in err.value.issues)
    assert "bad_policy.yaml:6:13" in text and "explode" in text
    assert "bad_policy.yaml:4:11: warn (5) is above act (3)" in text
    path = tmp_path / "policy.yaml"
    shutil.copy(DEFAULT_POLICY_PATH, path)
    holder = PolicyHolder(path)
    before = holder.policy
    path.write_text("signals:\n  evil: {warn: 1, act: 2, action: nuke}\n")
    issues = holder.reload()
    assert issues and "nuke" in str(issues[0]) and holder.policy == before
    assert holder.use_text("signals:\n  evil: {warn: 1, act: 2, action: block}\n") == []
    assert holder.policy.rules["evil"].action == "block"
    assert holder.use_text("signals: [1, 2") and holder.policy.rules["evil"].action == "block"


def test_persona_override_merges_field_by_field():
    base = load_policy(DEFAULT_POLICY_PATH)
    merged = base.merged({"signals": {"evil": {"act": 9.0}, "humorous": {"warn": 1, "act": 2}}, "window": 2})
    assert merged.rules["evil"].act == 9.0 and merged.rules["evil"].action == base.rules["evil"].action
    assert merged.rules["humorous"].action == "flag" and merged.window == 2
    assert base.merged(None) is base
    with pytest.raises(ValidationError, match="did you mean 'evil'"):
        parse_policy(b"signals:\n  evl: {warn: 1}\n", "p.yaml")


def test_warn_then_act_once_per_signal():
    ivs = Interventions()
    mon = GuardMonitor(_policy(evil=SignalRule("evil", warn=2, act=4, action="flag")), VECTORS, ivs)
    assert mon.check_token(0, {"evil": 1.0}) == CONTINUE and mon.events == []
    mon.check_token(1, {"evil": 2.5})
    mon.check_token(2, {"evil": 2.7})  # warning already given
    mon.check_token(3, {"evil": 4.5})
    mon.check_token(4, {"evil": 5.0})
    assert [(e.level, e.token_index, e.action) for e in mon.events] == [("warn", 1, "warn"), ("act", 3, "flag")]
    assert not ivs


def test_window_smooths_single_token_spikes():
    policy = Policy(rules={"evil": SignalRule("evil", act=3, action="block")}, window=4)
    mon = GuardMonitor(policy, VECTORS, Interventions())
    for i in range(3):
        assert mon.check_token(i, {"evil": 0.0}) == CONTINUE
    assert mon.check_token(3, {"evil": 8.0}) == CONTINUE  # one spike: window mean 2 < 3
    assert mon.check_token(4, {"evil": 8.0}) == BLOCK  # sustained: mean of (0, 0, 8, 8) = 4
    assert mon.events[0].value == pytest.approx(4.0) and mon.events[0].token_index == 4


def test_persona_baseline_gives_room_but_negative_baseline_does_not():
    rule = SignalRule("persona_drift", warn=2, act=4, action="block")
    pirate = GuardMonitor(_policy(persona_drift=rule), VECTORS, Interventions(), baseline={"persona_drift": 3.0})
    assert pirate.check_token(0, {"persona_drift": 5.0}) == CONTINUE  # 5 < 4 + 3
    assert pirate.check_token(1, {"persona_drift": 7.5}) == BLOCK
    assert pirate.trigger is not None and pirate.trigger.threshold == pytest.approx(7.0)
    calm = GuardMonitor(_policy(persona_drift=rule), VECTORS, Interventions(), baseline={"persona_drift": -3.0})
    assert calm.check_token(0, {"persona_drift": 4.0}) == BLOCK
    flat = Policy(rules={"persona_drift": rule}, baseline="assistant", window=1)
    assert (
        GuardMonitor(flat, VECTORS, Interventions(), baseline={"persona_drift": 3.0}).check_token(
            0, {"persona_drift": 4.0}
        )
        == BLOCK
    )


def test_room_counts_from_the_plain_assistant_so_it_is_never_watched_more_loosely():
    from playground.guard.baseline import PersonaBaseline, room_above

    assistant = PersonaBaseline({"persona_drift": 1.2, "evil": 0.4}, {"hijack": 0.3})
    villain = PersonaBaseline({"persona_drift": 3.0, "evil": 0.1}, {"hijack": -0.2})
    assert room_above(assistant, assistant) == PersonaBaseline({"persona_drift": 0.0, "evil": 0.0}, {"hijack": 0.0})
    room = room_above(villain, assistant)
    assert room.reply == pytest.approx({"persona_drift": 1.8, "evil": -0.3}) and room.prompt == pytest.approx(
        {"hijack": -0.5}
    )
    rule = SignalRule("hijack", warn=1.75, act=2.25, action="block", phase="prompt")
    policy = _policy(hijack=rule)
    # the assistant gets the policy's threshold exactly, the villain no less (negative room gives none)
    plain = GuardMonitor(policy, VECTORS, Interventions(), prompt_baseline=room_above(assistant, assistant).prompt)
    assert plain.check_prompt({"hijack": 2.3}) == BLOCK
    evil = GuardMonitor(policy, VECTORS, Interventions(), prompt_baseline=room.prompt)
    assert evil.check_prompt({"hijack": 2.3}) == BLOCK


def test_cap_installs_clamps_at_probe_and_steer_layers():
    ivs = Interventions()
    mon = GuardMonitor(_policy(evil=SignalRule("evil", act=3, action="cap")), VECTORS, ivs)
    assert mon.check_token(0, {"evil": 3.5}) == CONTINUE
    caps = {i.layer: i for i in ivs._items}
    assert set(caps) == {3, 5} and all(i.kind == "cap" for i in caps.values())
    assert caps[5].value == pytest.approx(2.0 + 3 * 4.0)  # calibration mean + threshold z * std
    assert caps[3].value == pytest.approx(1.0 + 3 * 0.5)


def test_counter_steer_and_hijack_acting_through_drift():
    ivs = Interventions()
    rules = {
        "evil": SignalRule("evil", act=3, action="counter_steer", strength=0.5),
        "hijack": SignalRule("hijack", act=2, action="counter_steer", strength=1.0),
    }
    mon = GuardMonitor(Policy(rules=rules, window=1), VECTORS, ivs)
    assert mon.check_prompt({"hijack": 2.5, "evil": 0.0}) == CONTINUE
    assert mon.check_token(0, {"hijack": 9.0}) == CONTINUE  # hijack is checked on the prompt only
    mon.check_token(1, {"evil": 3.1})
    adds = [(i.layer, i.kind, i.value) for i in ivs._items]
    assert adds == [(3, "add", pytest.approx(-10.0)), (3, "add", pytest.approx(-5.0))]
    assert [e.phase for e in mon.events] == ["prompt", "reply"]


def test_regenerate_and_block_verdicts():
    rules = {"evil": SignalRule("evil", act=3, action="regenerate", strength=0.7)}
    mon = GuardMonitor(Policy(rules=rules, window=1), VECTORS, Interventions())
    assert mon.check_token(0, {"evil": 3.0}) == REGENERATE
    assert mon.counter_steering() == {"evil": -0.7}
    rules = {"hijack": SignalRule("hijack", act=1, action="regenerate")}
    mon = GuardMonitor(Policy(rules=rules), VECTORS, Interventions())
    assert mon.check_prompt({"hijack": 1.5}) == REGENERATE and mon.counter_steering() == {"persona_drift": -0.5}


def test_a_warning_is_not_logged_after_the_action_it_is_implied_by():
    policy = Policy(rules={"evil": SignalRule("evil", warn=1.0, act=2.0, action="flag")}, window=1)
    mon = GuardMonitor(policy, {}, Interventions())
    for i, v in enumerate([2.5, 1.5, 1.2, 2.2]):
        mon.check_token(i, {"evil": v})
    assert [(e.level, e.token_index) for e in mon.events] == [("act", 0)]
    mon = GuardMonitor(policy, {}, Interventions())
    for i, v in enumerate([1.5, 2.5]):
        mon.check_token(i, {"evil": v})
    assert [(e.level, e.token_index) for e in mon.events] == [("warn", 0), ("act", 1)]
