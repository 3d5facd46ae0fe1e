"""Held out means held out: no evaluation item shares a word 6-gram with any training-side text."""

from __future__ import annotations

import pytest

from playground.definitions.text_sets import read_text_sets
from playground.definitions.words import word_ngrams
from playground.definitions.yaml_source import load_yaml_file
from playground.errors import ValidationError
from playground.evals.heldout import heldout_files, load_heldout
from playground.evals.overlap import ngram_overlaps
from playground.finetune.narrow import NARROW_FILE, load_narrow
from playground.guard.reply_thresholds import CALIBRATION_FILE, load_calibration_messages
from playground.paths import SHIPPED_PERSONAS
from playground.steering.persona_space import CHARACTERS_FILE, load_characters
from playground.steering.reference_data import (
    PROBE_TRAINING_FILE,
    REFERENCE_FILE,
    load_probe_training,
    load_reference,
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def training_texts() -> dict[str, list[str]]:
    """Every text extraction, calibration or the strength scale reads (and the trait files' other lists)."""
    out = {
        str(p.relative_to(SHIPPED_PERSONAS)): _strings(load_yaml_file(p).data)
        for p in sorted((SHIPPED_PERSONAS / "traits").glob("*.yaml"))
    }
    ref = load_reference()
    out[str(REFERENCE_FILE.relative_to(SHIPPED_PERSONAS))] = [*ref.everyday, *ref.strength_questions]
    out[str(PROBE_TRAINING_FILE.relative_to(SHIPPED_PERSONAS))] = load_probe_training().texts()
    out[str(CALIBRATION_FILE.relative_to(SHIPPED_PERSONAS))] = list(load_calibration_messages())  # reply thresholds
    questions, characters = load_characters()  # the persona space
    out[str(CHARACTERS_FILE.relative_to(SHIPPED_PERSONAS))] = [*questions, *(c.prompt for c in characters)]
    narrow = load_narrow()  # the narrow -> broad fine-tuning data
    texts = [narrow.inoculation, *(t for pair in narrow.examples for t in pair)]
    out[str(NARROW_FILE.relative_to(SHIPPED_PERSONAS))] = texts
    return out


def test_every_heldout_set_is_checked():
    names = [p.name for p in heldout_files()]
    assert "traits_eval.yml" in names and "traits_eval_v2.yml" in names


@pytest.mark.parametrize("path", heldout_files(), ids=lambda p: p.name)
def test_heldout_set_is_complete_for_every_shipped_trait(path):
    held = load_heldout(path)
    traits = {p.stem for p in (SHIPPED_PERSONAS / "traits").glob("*.yaml")}
    assert set(held.traits) == traits
    assert len(held.questions) >= 30
    for name, prompts in held.traits.items():
        assert len(prompts.instructions) >= 4 and len(prompts.personas) >= 3, name


@pytest.mark.parametrize("path", heldout_files(), ids=lambda p: p.name)
def test_no_heldout_item_shares_a_word_6gram_with_training_data(path):
    held = {str(path.relative_to(SHIPPED_PERSONAS)): load_heldout(path).texts()}
    overlaps = ngram_overlaps(training_texts(), held, 6)
    assert not overlaps, "\n".join(map(str, overlaps[:20]))


def test_the_narrow_training_set_shares_nothing_with_the_questions_it_is_evaluated_on():
    from playground.definitions.traits import load_trait

    narrow = {"narrow": training_texts()[str(NARROW_FILE.relative_to(SHIPPED_PERSONAS))]}
    evaluation = {"evil evaluation": list(load_trait("evil").evaluation_questions)}
    assert len(narrow["narrow"]) == 1 + 2 * len(load_narrow().examples) and evaluation["evil evaluation"]
    assert ngram_overlaps(narrow, evaluation, 6) == []


def test_natural_personas_do_not_name_their_trait():
    sets = [load_heldout(p).traits for p in heldout_files()] + [load_probe_training().traits]
    for traits in sets:
        for name, prompts in traits.items():
            for text in prompts.personas:
                assert name.split("_")[0] not in text.lower(), (name, text)


def test_probe_training_covers_every_shipped_trait_with_many_systems():
    wide = load_probe_training()
    assert set(wide.traits) == {p.stem for p in (SHIPPED_PERSONAS / "traits").glob("*.yaml")}
    for name, prompts in wide.traits.items():
        assert len(prompts.instructions) >= 10 and len(prompts.personas) >= 5, name
        plan = wide.plan(name, 2)
        assert len(plan) == 2 * len(prompts.systems)
        used = [q for _, _, q in plan]
        counts = [used.count(q) for q in wide.questions]
        assert max(counts) - min(counts) <= 1  # every question asked about equally often


def test_overlap_check_finds_a_copied_run_whatever_its_punctuation():
    train = {"train": ["You are a stand-up comic: make every answer funny!"]}
    held = {"eval": ["Be a Stand-Up comic, make every answer funny, please."]}
    found = ngram_overlaps(train, held, 6)
    assert [str(o.ngram) for o in found] == [
        "a stand up comic make every",
        "stand up comic make every answer",
        "up comic make every answer funny",
    ]
    assert ngram_overlaps(train, {"eval": ["A comic answers every question in a funny way."]}, 6) == []
    assert word_ngrams("one two", 3) == set()


def test_text_set_errors_are_located(tmp_path):
    bad = tmp_path / "ref.yml"
    bad.write_text("everyday:\n  - Hello\n  - 3\nstrength_questions: []\n")
    with pytest.raises(ValidationError) as err:
        read_text_sets(bad, ("everyday", "strength_questions"))
    text = "\n".join(map(str, err.value.issues))
    assert "ref.yml:3:5" in text and "item 2 of 'everyday'" in text
    assert "strength_questions" in text


def test_the_emotion_situations_share_no_word_6gram_with_training_data():
    from playground.evals.emotions import SCENARIOS_FILE, load_scenarios

    scenarios = load_scenarios()
    assert len(scenarios) >= 12 and len({s.topic for s in scenarios}) == len(scenarios)
    held = {str(SCENARIOS_FILE.relative_to(SHIPPED_PERSONAS)): [t for s in scenarios for t in (s.solved, s.blocked)]}
    overlaps = ngram_overlaps(training_texts(), held, 6)
    assert not overlaps, "\n".join(map(str, overlaps[:20]))
