"""Bring your own model (issue 19): a model given by Hub id (here a tiny random llama laid out in a Hub cache,
offline) chats unprepared and says what it lacks; ``prepare`` makes its instruments, including the guard's reply
thresholds measured on its own replies, which the shipped policy then uses for it (and only for it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from playground.backends import load_backend
from playground.backends.model_source import resolve_model
from playground.chat.session import Playground
from playground.guard.model_thresholds import MEASURED_ON, measured_thresholds, policy_for_model
from playground.guard.policy import DEFAULT_POLICY_PATH, load_policy
from playground.guard.reply_thresholds import load_calibration_messages
from playground.steering.reference_data import load_reference

from .tiny_model import save_in_hub_cache

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

REPO_ID = "tiny-org/tiny-chat"
MODEL_ID = "tiny-org--tiny-chat"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A Hub cache holding the tiny model (offline) and a user cache of this module's own."""
    import huggingface_hub.constants as hub

    hub_dir = tmp_path_factory.mktemp("hub")
    save_in_hub_cache(hub_dir, REPO_ID)
    before = (hub.HF_HUB_CACHE, os.environ.get("HF_HUB_OFFLINE"), os.environ["PLAYGROUND_CACHE"])
    hub.HF_HUB_CACHE = str(hub_dir)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["PLAYGROUND_CACHE"] = str(tmp_path_factory.mktemp("user-cache"))
    try:
        yield Path(os.environ["PLAYGROUND_CACHE"])
    finally:
        hub.HF_HUB_CACHE = before[0]
        if before[1] is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before[1]
        os.environ["PLAYGROUND_CACHE"] = before[2]


@pytest.fixture(scope="module")
def tiny(cache):
    return load_backend(REPO_ID)


def test_a_hub_id_resolves_offline_to_the_cached_folder(cache):
    source = resolve_model(REPO_ID)
    assert (source.kind, source.model_id) == ("hf", MODEL_ID)
    assert (source.path / "config.json").is_file()


def test_an_unprepared_hub_model_chats_and_names_the_prepare_command(tiny):
    result = Playground(loaded_backend=tiny).chat("pirate", "Hello!", max_tokens=6, temperature=0)
    assert len(result.tokens) == 6 and result.probes == {}
    text = "\n".join(result.notices)
    assert f"no trait vectors for {MODEL_ID}" in text
    assert f"python -m playground prepare --model {tiny.source.path}" in text


@pytest.fixture(scope="module")
def prepared(tiny):
    from playground.evals.prepare import prepare_model

    # evil (a trait the shipped policy guards) only; three calibration messages instead of seventy and four
    # strength questions instead of 32 (the steps are under test here, not the numbers of a random model)
    strength = load_reference().strength_questions[:4]
    return prepare_model(
        tiny, ["evil"], screen=False, guard_messages=load_calibration_messages()[:3], strength_questions=strength
    )


def test_prepare_runs_every_step_on_a_hub_model_and_measures_its_guard_thresholds(prepared, cache):
    card = prepared
    assert card["model"] == MODEL_ID and card["layers"] == 3
    assert set(card["seconds"]) == {"extract evil", "calibrate", "guard thresholds"}
    assert set(card["traits"]) == {"evil"} and card["traits"]["evil"]["probe_layer"] in (0, 1, 2)
    from playground.steering.store import VectorStore

    assert VectorStore(MODEL_ID).get("evil").extra["strength_check"]["n_questions"] == 4  # the test's own set
    measured = card["guard_thresholds"]["evil"]
    assert measured["act"] > measured["warn"]
    assert (cache / MODEL_ID / "guard" / "reply_thresholds.json").is_file()
    text = (cache / MODEL_ID / "MODEL_CARD.md").read_text()
    assert f"evil warn {measured['warn']:.2f} / act {measured['act']:.2f}" in text


def test_the_shipped_policy_uses_the_models_own_thresholds_and_a_users_policy_keeps_its_numbers(prepared, tmp_path):
    card = prepared
    shipped = load_policy(DEFAULT_POLICY_PATH)
    mine = policy_for_model(shipped, MODEL_ID)
    assert (mine.rules["evil"].warn, mine.rules["evil"].act) == tuple(card["guard_thresholds"]["evil"].values())
    assert mine.rules["hijack"] == shipped.rules["hijack"]  # the prompt phase keeps the screen's own numbers
    assert mine.rules["persona_drift"] == shipped.rules["persona_drift"]  # not measured: unchanged
    assert MODEL_ID in mine.source
    assert policy_for_model(shipped, MEASURED_ON) is shipped  # the default model's numbers are the file's
    own = tmp_path / "own.yaml"
    own.write_text(DEFAULT_POLICY_PATH.read_text())
    theirs = load_policy(own)
    assert policy_for_model(theirs, MODEL_ID) is theirs
    pg = Playground(loaded_backend=None, model=REPO_ID)
    assert pg.policy_for(pg.catalog.persona("pirate")).rules["evil"].warn == mine.rules["evil"].warn


def test_a_prepared_hub_model_reads_and_steers_and_its_notices_shrink(tiny, prepared, cache):
    pg = Playground(loaded_backend=tiny)
    plain = pg.chat("assistant", "Hello!", max_tokens=8, temperature=0)
    steered = pg.chat("assistant", "Hello!", max_tokens=8, temperature=0, steering={"evil": 1.0})
    assert set(plain.probes) == {"evil"} and len(plain.probes["evil"]["per_token"]) == 8
    assert steered.tokens != plain.tokens
    text = "\n".join(plain.notices)
    assert "no trait vectors for" not in text and "no vectors for apathetic" in text
    assert "--traits apathetic," in text
    assert "reply thresholds" not in text  # measured on this model
    peaks = cache / MODEL_ID / "guard" / "reply_thresholds.json"
    peaks.rename(peaks.with_suffix(".away"))
    try:  # without its own measurement, the model is told whose numbers the guard uses
        text = "\n".join(pg.chat("assistant", "Hello!", max_tokens=2).notices)
        assert f"reply thresholds (evil) were measured on {MEASURED_ON}, not on {MODEL_ID}" in text
        assert f"guard-thresholds --model {tiny.source.path}" in text
    finally:
        peaks.with_suffix(".away").rename(peaks)
    assert measured_thresholds(MODEL_ID) is not None


class _Saved:
    """Stands in for a loaded tokenizer / model: ``save_pretrained`` writes one file."""

    def __init__(self, name: str):
        self.name, self.config = name, type("Config", (), {})()

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / self.name).write_text("weights")


def test_a_gguf_is_converted_once_and_a_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    from playground.backends.gguf_folder import FOLDER_MARK, converted_folder, ensure_converted

    monkeypatch.setenv("PLAYGROUND_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(3 << 20))
    calls: list[str] = []

    def broken(where: str, extra: dict[str, str]):
        calls.append(extra["gguf_file"])
        raise RuntimeError("unexpected end of file")

    with pytest.raises(RuntimeError, match="unexpected end"):
        ensure_converted(gguf, broken, log=calls.append)
    assert list((tmp_path / "cache" / "converted").iterdir()) == []  # no folder, no half-written temporary

    def load(where: str, extra: dict[str, str]):
        calls.append(extra["gguf_file"])
        return _Saved("tokenizer.json"), _Saved("model.safetensors")

    calls.clear()
    folder = ensure_converted(gguf, load, log=lambda _m: None)
    assert folder == converted_folder(gguf) and (folder / FOLDER_MARK).is_file()
    assert sorted(p.name for p in folder.iterdir()) == [FOLDER_MARK, "model.safetensors", "tokenizer.json"]
    assert ensure_converted(gguf, load, log=lambda _m: None) == folder and calls == ["m.gguf"]  # read once
    gguf.write_bytes(b"GGUF" + bytes(3 << 20) + b"changed")
    assert converted_folder(gguf) != folder  # another file: another conversion
