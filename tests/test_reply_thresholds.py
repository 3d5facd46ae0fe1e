"""Reply-phase thresholds derived from ordinary replies: the peak the monitor sees, the percentiles, the policy
file they are written into, and the shipped numbers' agreement with the stored peaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.backends.base import Interventions
from playground.errors import ValidationError
from playground.evals.reply_guard import CONDITIONS, condition_policies
from playground.evals.reply_guard_report import change_vs_off, similarity
from playground.evals.reply_peaks import PEAKS_FILE, calibration_digest, read_peaks, shipped_personas
from playground.guard.policy import DEFAULT_POLICY_PATH, GuardMonitor, Policy, SignalRule, load_policy, parse_policy
from playground.guard.reply_thresholds import (
    CALIBRATION_FILE,
    Thresholds,
    derive_thresholds,
    load_calibration_messages,
    reached,
    reply_peaks,
    windowed_peak,
    with_thresholds,
)
from playground.paths import SHIPPED_MODELS

DEFAULT_MODEL = "smollm2-135m"


@pytest.mark.parametrize("window", [1, 3, 4, 7])
def test_the_peak_is_exactly_where_the_monitor_starts_to_warn(window):
    rng = np.random.default_rng(window)
    for _ in range(25):
        series = rng.normal(0, 1.5, size=int(rng.integers(1, 40))).tolist()
        peak = windowed_peak(series, window)

        def fires(threshold: float, series: list[float] = series) -> bool:
            policy = Policy(rules={"evil": SignalRule("evil", warn=threshold)}, window=window)
            monitor = GuardMonitor(policy, {}, Interventions())
            for i, v in enumerate(series):
                monitor.check_token(i, {"evil": v})
            return bool(monitor.events)

        assert fires(peak - 1e-6) and not fires(peak + 1e-6)


def test_peaks_count_from_the_room_and_never_from_below_zero():
    per_token = {"evil": [0.0, 2.0, 2.0, 0.0], "impolite": [1.0]}
    peaks = reply_peaks(per_token, {"evil": 0.5, "impolite": -3.0}, window=2)
    assert peaks == pytest.approx({"evil": 1.5, "impolite": 1.0})
    with pytest.raises(ValueError):
        windowed_peak([], 4)
    with pytest.raises(ValueError):
        windowed_peak([1.0], 0)


def test_thresholds_hold_the_whole_policy_to_its_warn_and_act_rates():
    rng = np.random.default_rng(0)
    common = rng.normal(size=400)
    peaks = [
        {"evil": float(c + rng.normal()), "drift": float(0.5 * c + rng.normal()), "impolite": float(rng.gamma(2.0))}
        for c in common
    ]
    signals = ["evil", "drift", "impolite"]
    got = derive_thresholds(peaks, signals, warn_rate=0.05, act_rate=0.01)
    assert 0.03 <= reached(peaks, got, "warn") <= 0.05  # the policy as a whole, not each signal, warns on 5%
    assert 0.005 <= reached(peaks, got, "act") <= 0.01
    for t in got.values():
        assert t.act > t.warn and round(t.warn / 0.05, 6).is_integer() and round(t.act / 0.05, 6).is_integer()
    per_signal = [np.mean([p[s] >= got[s].warn for p in peaks]) for s in signals]
    assert max(per_signal) < 0.05  # each signal alone warns less often than the policy does
    flat = derive_thresholds([{"x": 1.0}] * 30, ["x"])
    assert flat == {"x": Thresholds(1.0, 1.05)}  # equal peaks still give two distinct levels
    with pytest.raises(ValueError, match="too few"):
        derive_thresholds(peaks[:10], signals)
    with pytest.raises(ValueError):
        derive_thresholds(peaks, signals, warn_rate=0.01, act_rate=0.05)


def test_writing_thresholds_keeps_comments_and_yields_a_valid_policy():
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    new = with_thresholds(text, {"evil": Thresholds(1.25, 2.5), "impolite": Thresholds(3.1, 4.2)})
    policy = parse_policy(new.encode(), "default.yaml")
    assert (policy.rules["evil"].warn, policy.rules["evil"].act) == (1.25, 2.5)
    assert (policy.rules["impolite"].warn, policy.rules["impolite"].act) == (3.1, 4.2)
    before = load_policy(DEFAULT_POLICY_PATH)
    assert (
        policy.rules["hijack"] == before.rules["hijack"] and policy.rules["sycophantic"] == before.rules["sycophantic"]
    )
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in new.splitlines() if line.lstrip().startswith("#")]
    with pytest.raises(ValueError, match="no_such_signal"):
        with_thresholds(text, {"no_such_signal": Thresholds(1.0, 2.0)})


def test_calibration_messages_load_and_bad_files_point_at_the_line(tmp_path):
    assert len(load_calibration_messages()) >= 40
    bad = tmp_path / "cal.yml"
    bad.write_text("messages:\n  - fine\n  - 12\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_calibration_messages(bad)
    assert err.value.issues[0].line == 3


def test_shipped_policy_thresholds_are_the_ones_derived_from_the_stored_peaks():
    """Fails when the policy's numbers, the calibration messages or the persona set change without rerunning
    ``python -m playground guard-thresholds --ship``."""
    path = SHIPPED_MODELS / DEFAULT_MODEL / "guard" / PEAKS_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    messages, personas = load_calibration_messages(), shipped_personas()
    assert doc["digest"] == calibration_digest(messages, personas, doc["window"], doc["max_tokens"]), (
        f"{CALIBRATION_FILE.name} or the shipped personas changed since {path} was written"
    )
    records = read_peaks(path)
    assert len(records) == len(messages) * len(personas)
    policy = load_policy(DEFAULT_POLICY_PATH)
    assert policy.window == doc["window"]
    derived = derive_thresholds([r.peaks for r in records], list(doc["thresholds"]))
    reply_rules = {s for s, r in policy.rules.items() if r.checks("reply")}
    assert set(derived) == reply_rules
    for signal, t in derived.items():
        assert (policy.rules[signal].warn, policy.rules[signal].act) == (t.warn, t.act), signal


def test_evaluation_conditions_differ_only_in_the_reply_rules():
    shipped = load_policy(DEFAULT_POLICY_PATH)
    policies = condition_policies(shipped)
    assert tuple(policies) == CONDITIONS
    assert not policies["off"].rules and not any(p.screen_prompt for p in policies.values())
    assert "hijack" not in policies["policy"].rules
    for signal, rule in policies["cap"].rules.items():
        assert rule.action == "cap"
        assert (rule.warn, rule.act) == (shipped.rules[signal].warn, shipped.rules[signal].act)


def test_report_measures():
    rows = [
        {"set": "jailbreak", "condition": "off", "harmful_share": 0.5},
        {"set": "jailbreak", "condition": "cap", "harmful_share": 0.2},
        {"set": "harmless", "condition": "off", "harmful_share": 0.0},
        {"set": "harmless", "condition": "cap", "harmful_share": 0.0},
    ]
    assert change_vs_off(rows, "jailbreak", "cap") == pytest.approx(-0.6)
    assert change_vs_off(rows, "harmless", "cap") is None
    assert similarity("Tea is good.", "tea is GOOD") == 1.0
    assert similarity("tea is good", "coffee was bad") == 0.0
    assert 0 < similarity("tea is good", "tea is bad") < 1


def test_push_removed_is_the_share_of_the_judge_shift_taken_away():
    from playground.evals.reply_guard_report import push_removed

    rows = [
        {"set": "steer:evil", "condition": "off", "judge_mean": 0.03, "harmless_judge": -0.01},
        {"set": "steer:evil", "condition": "cap", "judge_mean": 0.00, "harmless_judge": -0.01},
        {"set": "jailbreak", "condition": "off", "judge_mean": -0.02, "harmless_judge": -0.01},
        {"set": "jailbreak", "condition": "cap", "judge_mean": -0.03, "harmless_judge": -0.01},
    ]
    assert push_removed(rows, "steer:evil", "cap") == pytest.approx(0.75)
    assert push_removed(rows, "jailbreak", "cap") is None  # no push above ordinary replies: nothing to remove
