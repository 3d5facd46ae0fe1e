"""``python -m playground chat`` end to end on the real embedded model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO


def _chat(*args: str, input: str | None = None, timeout: int = 120):
    return subprocess.run(
        [sys.executable, "-m", "playground", "chat", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        input=input,
        timeout=timeout,
    )


def test_json_output_contract():
    r = _chat("--persona", "assistant", "--json", "--max-tokens", "24", "--temperature", "0", "Hello")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, "exactly one JSON object on stdout"
    out = json.loads(lines[0])
    assert out["persona"] == "assistant"
    assert out["model"] == "smollm2-135m"
    assert out["reply"].strip()
    assert "".join(out["tokens"]) == out["reply"]
    assert 0 < len(out["tokens"]) <= 24
    assert out["steering"] == {}
    assert set(out["probes"]) >= {"evil", "humorous"}
    assert len(out["probes"]["evil"]["per_token"]) == len(out["tokens"])
    assert out["guard"] == {"events": [], "blocked": False, "attempts": 1, "policy": "default"}


def test_same_seed_and_temperature_zero_is_reproducible():
    args = (
        "--persona",
        "pirate",
        "--json",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        "--seed",
        "7",
        "Tell me a joke",
    )
    a, b = _chat(*args), _chat(*args)
    assert a.returncode == 0 and b.returncode == 0
    assert json.loads(a.stdout)["reply"] == json.loads(b.stdout)["reply"]


def test_sampling_with_a_seed_is_reproducible(playground):
    a = playground.chat("pirate", "Tell me about your ship", temperature=1.0, seed=123, max_tokens=30)
    b = playground.chat("pirate", "Tell me about your ship", temperature=1.0, seed=123, max_tokens=30)
    assert a.reply == b.reply


def test_persona_by_path(tmp_path):
    f = tmp_path / "robot_butler.yaml"
    f.write_text(
        "name: Jeeves-9000\ndescription: A robot butler.\nsystem_prompt: You are a very formal robot butler.\n"
    )
    r = _chat("--persona", str(f), "--json", "--max-tokens", "8", "Good morning")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["persona"] == "robot_butler"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("--persona", "pirat", "--json", "hi"), "did you mean 'pirate'"),
        (("--json",), "--json needs a MESSAGE"),
        (("--temperature", "9", "--json", "hi"), "--temperature must be between 0 and 2"),
        (("--model", "/nowhere/model.gguf", "--json", "hi"), "not found"),
    ],
)
def test_bad_arguments_are_clear_errors(args, expect):
    r = _chat(*args)
    assert r.returncode == 2
    assert expect in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_persona_file_reports_location(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: X\ndescription: d\nsystem_promt: s\n")
    r = _chat("--persona", str(f), "--json", "hi")
    assert r.returncode == 1
    assert "bad.yaml:3:1: unknown field 'system_promt'; did you mean 'system_prompt'?" in r.stderr


def test_interactive_chat_streams_and_handles_commands():
    r = _chat("--persona", "pirate", "--max-tokens", "12", input="Hello there\n/undo\n/persona bard\n/quit\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Captain Rook" in out and "Ahoy" in out or "Arr" in out
    assert "[last turn removed]" in out
    assert "[now talking to" in out


def test_interactive_chat_steers_shows_probes_and_policy_and_refuses_unknown_commands():
    lines = [
        "/steer humorous=1",
        "/stear evil=1",  # a typo: refused, never sent to the model
        "/steer nosuchtrait=1",
        "/steer evil=9",
        "/probes",
        "Tell me about the moon.",
        "/probes",
        "/steer off",
        "/policy off",
        "/policy",
        "/policy default",
        "/quit",
    ]
    r = _chat("--persona", "assistant", "--max-tokens", "8", input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "[steering: humorous +1]" in out
    assert "[unknown command '/stear'; did you mean '/steer'?; nothing was sent]" in out
    assert "unknown trait 'nosuchtrait'" in out and "[error]" in out
    assert out.count("[steering: humorous +1]") == 1  # the bad /steer lines changed nothing
    assert "[no readouts yet: send a message first]" in out
    assert "persona_drift" in out and "reliable" in out  # the readout table after the reply
    assert "[steering: off]" in out
    assert "no rules: the guard is off" in out
    from playground.guard.policy import DEFAULT_POLICY_PATH, load_policy

    evil = load_policy(DEFAULT_POLICY_PATH).rules["evil"]
    assert "[policy 'default'" in out and f"evil {evil.warn:g}/{evil.act:g} cap" in out
    assert out.count("Assistant: ") + out.count("assistant: ") <= 2  # one reply (and maybe the greeting)
