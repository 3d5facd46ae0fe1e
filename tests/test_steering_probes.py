"""Steering and calibrated probes on the real default model with the shipped vectors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from playground.backends.base import Steering
from playground.errors import PlaygroundError
from playground.prompt.chat_template import Message
from playground.steering.probes import ProbeSet, build_steering
from playground.steering.store import VectorStore

from .conftest import REPO

# The seven traits of the persona-vectors paper and two emotions, shipped for the default model
# (personas/traits/*.yaml).
TRAITS = {"evil", "sycophantic", "hallucinating", "apathetic", "humorous", "impolite", "optimistic"}
TRAITS |= {"joyful", "distressed"}


@pytest.fixture(scope="module")
def store():
    return VectorStore("smollm2-135m")


def test_shipped_probes_are_fit_jointly_and_carry_their_measured_reliability(store):
    probes = ProbeSet(store.all())
    for trait in TRAITS:
        probe = store.get(trait).probe
        assert probe is not None and probe.method == "lda", trait
        assert np.linalg.norm(probe.direction) == pytest.approx(1.0, abs=1e-4)
        assert set(probe.reliability) >= {"cv", "heldout"}, trait
        rel = probes.reliability()[trait]
        assert rel["source"] == "heldout" and rel["reliable"] == (rel["auroc"] >= 0.8)


def test_shipped_traits_have_calibration(store):
    assert set(store.names()) >= TRAITS
    for trait in TRAITS:
        vec = store.get(trait)
        assert vec.model_id == "smollm2-135m" and vec.d_model == 576
        assert 1 <= vec.probe_layer <= 28 and vec.steer_layer >= 1
        mean, std = vec.calibration[vec.probe_layer]
        assert std > 0


def test_strength_zero_is_identical_to_unsteered(playground):
    plain = playground.chat("assistant", "Tell me about cats.", temperature=0, max_tokens=30)
    zero = playground.chat("assistant", "Tell me about cats.", temperature=0, max_tokens=30, steering={"humorous": 0})
    assert zero.reply == plain.reply and zero.steering == {}


def test_doubled_vector_at_one_equals_vector_at_two(store, playground):
    vec = store.get("humorous")
    doubled = vec * 2.0
    doubled.steer_scale = {l: s * 2.0 for l, s in vec.steer_scale.items()}
    a = build_steering({"humorous": 1.0}, {"humorous": doubled})
    b = build_steering({"humorous": 2.0}, {"humorous": vec})
    assert a.fingerprint() == b.fingerprint() or np.allclose(a.additions[vec.steer_layer], b.additions[vec.steer_layer])
    backend = playground.backend
    prompt = backend.tokenize(backend.template.render([Message("user", "Hi")]))
    from playground.backends.sampling import Sampling

    s = Sampling(temperature=0, max_tokens=20)
    out_a = [x.token for x in backend.stream(prompt, s, steering=a)]
    out_b = [x.token for x in backend.stream(prompt, s, steering=b)]
    assert out_a == out_b


def test_steering_changes_output_and_is_scoped_to_one_call(playground):
    plain = playground.chat("assistant", "Tell me about cats.", temperature=0, max_tokens=30)
    steered = playground.chat(
        "assistant", "Tell me about cats.", temperature=0, max_tokens=30, steering={"humorous": 1}
    )
    after = playground.chat("assistant", "Tell me about cats.", temperature=0, max_tokens=30)
    assert steered.reply != plain.reply
    assert after.reply == plain.reply
    assert steered.steering == {"humorous": 1.0}


def test_positive_steering_raises_the_trait_readout(playground):
    """Strength 1 raises the trait's live readout by at least half a calibrated unit on any build. The live probes
    are fit apart from the steering directions (issue 16), so the readout rises only as far as the text carries the
    trait: on the held-out questions steering at +1 raised evil +1.8 and impolite +2.6 but humorous only +0.3
    (docs/TRAITS_EVAL.md), so humorous is not asserted here."""
    msgs = ["What should I do this weekend?", "How do I cook rice?", "Tell me about the moon.", "Describe your day."]
    for trait in ("evil", "impolite"):
        base = np.mean(
            [playground.chat("assistant", m, temperature=0, max_tokens=30).probes[trait]["mean"] for m in msgs]
        )
        up = np.mean(
            [
                playground.chat("assistant", m, temperature=0, max_tokens=30, steering={trait: 1.0}).probes[trait][
                    "mean"
                ]
                for m in msgs
            ]
        )
        assert up > base + 0.5, (trait, base, up)


def test_probe_contract_and_calibration_on_neutral_replies(playground):
    result = playground.chat("assistant", "How do plants grow?", temperature=0, max_tokens=30)
    assert set(result.probes) >= TRAITS
    for trait, p in result.probes.items():
        assert len(p["per_token"]) == len(result.tokens)
        assert p["prompt_last"] == p["per_token"][0]
        assert abs(p["mean"] - np.mean(p["per_token"])) < 1e-3
        # calibrated: a neutral assistant reply sits near 0 (within a few standard deviations)
        assert abs(p["mean"]) < 3.0, (trait, p["mean"])


@pytest.mark.parametrize(
    ("steer", "expect"),
    [({"humourous": 1.0}, "did you mean 'humorous'"), ({"evil": 3.0}, "outside -2..2")],
)
def test_bad_steering_is_a_clear_error(playground, steer, expect):
    with pytest.raises(PlaygroundError, match=expect):
        playground.chat("assistant", "hi", steering=steer, max_tokens=2)


def test_capture_is_cleared_when_the_consumer_stops_early(playground):
    backend = playground.backend
    from playground.backends.sampling import Sampling

    prompt = backend.tokenize("Hello there")
    gen = backend.stream(prompt, Sampling(temperature=0, max_tokens=50), capture=[5], steering=Steering())
    next(gen)
    gen.close()
    assert not backend._filter.active()


def _playground_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "playground", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def test_cli_steer_and_score_json():
    r = _playground_cli("chat", "--json", "--steer", "humorous=0.8", "--max-tokens", "12", "Hi")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["steering"] == {"humorous": 0.8}
    assert set(out["probes"]) >= TRAITS
    r = _playground_cli("score", "--persona", "pirate", "--json", "--reply", "Arr, matey!", "Hi")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reply"] == "Arr, matey!" and out["steering"] == {}
    assert len(out["probes"]["evil"]["per_token"]) == len(out["tokens"])
    bad = _playground_cli("chat", "--json", "--steer", "evil", "Hi")
    assert bad.returncode == 2 and "expected TRAIT=STRENGTH" in bad.stderr


def test_several_traits_steer_at_once(store):
    vectors = {t: store.get(t) for t in ("humorous", "evil")}
    both = build_steering({"humorous": 1.0, "evil": -0.5}, vectors)
    one = build_steering({"humorous": 1.0}, vectors)
    other = build_steering({"evil": -0.5}, vectors)
    assert both.fingerprint() == one.combined(other).fingerprint()
    assert set(both.additions) == {vectors["humorous"].steer_layer, vectors["evil"].steer_layer}


def test_strength_one_is_the_sweep_dose_times_the_validated_multiple(store):
    for trait in TRAITS:
        vec = store.get(trait)
        tuned = vec.extra["steering"]
        assert tuned["layer"] == vec.steer_layer
        norm = vec.extra["resid_norm"][str(vec.steer_layer)]
        check = vec.extra["strength_check"]  # calibrate: <= 5% degenerate replies on 32 questions at strength 1
        assert check["n_questions"] >= 30 and check["degenerate_share"][f"{check['multiple']:g}"] <= 0.05, trait
        expected = tuned["fraction"] * norm * check["multiple"]
        assert vec.steer_scale[vec.steer_layer] == pytest.approx(expected, rel=1e-3)
        chosen = [r for r in tuned["sweep"] if r["layer"] == vec.steer_layer and r["fraction"] == tuned["fraction"]]
        assert chosen and chosen[0]["coherent"], trait


def test_an_everyday_assistant_exchange_reads_near_zero_on_every_probe(playground):
    """0 = a typical assistant reply, greetings and one-word answers included (held-out everyday prompts; the
    full set is in docs/TRAITS_EVAL.md). Must hold on any CPU: the mean |z| over the prompts below 1 per probe."""
    from playground.evals.heldout import load_heldout

    readings: dict[str, list[float]] = {}
    for message in load_heldout().everyday[:4]:
        result = playground.chat("assistant", message, temperature=0, max_tokens=40)
        for trait, p in result.probes.items():
            readings.setdefault(trait, []).append(p["mean"])
            assert "reliability" in p and p["reliability"]["source"] == "heldout"
    for trait, values in readings.items():
        assert np.mean(np.abs(values)) < 1.0, (trait, values)
