"""Validation of definition files: every problem is located (file:line:col) and says what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from playground.definitions.personas import Catalog
from playground.definitions.validation import validate_file
from playground.definitions.yaml_source import MAX_FILE_BYTES, load_yaml_file, parse_yaml
from playground.errors import ValidationError

from .conftest import FIXTURES, REPO

BAD = FIXTURES / "bad"


def _issues(name: str):
    return validate_file(BAD / name, Catalog())


def test_shipped_definitions_are_valid():
    files = sorted((REPO / "personas").rglob("*.yaml"))
    assert len(files) >= 9 + 3 + 7
    for f in files:
        assert validate_file(f) == [], f


def test_duplicate_key_points_at_second_occurrence():
    (issue,) = _issues("duplicate_key.yaml")
    assert (issue.line, issue.column) == (4, 1)
    assert "duplicate key 'name'" in issue.message and "line 1" in issue.message


def test_unknown_fields_get_did_you_mean_hints():
    issues = _issues("unknown_fields.yaml")
    messages = {(i.line, i.column): i.message for i in issues}
    assert "did you mean 'description'" in messages[(2, 1)]
    assert "did you mean 'temperature'" in messages[(5, 3)]
    assert any("missing required field 'description'" in m for m in messages.values())


def test_wrong_types_and_unknown_references():
    issues = _issues("wrong_types.yaml")
    text = "\n".join(str(i) for i in issues)
    assert "wrong_types.yaml:1:7: 'name' must be a string, got a list" in text
    assert "4:26: unknown role model 'carekeeper'; did you mean 'caretaker'?" in text
    assert "6:13: 'steering.humorous' is 5; it must be at most 2" in text
    assert "7:3: unknown trait 'evill' in 'steering'; did you mean 'evil'?" in text
    assert "9:15: 'sampling.max_tokens' must be an integer, got a string" in text


def test_syntax_error_names_where_the_problem_started():
    (issue,) = _issues("syntax_error.yaml")
    assert issue.line == 4
    assert "line 2, column 14" in issue.message


def test_invalid_utf8_is_located():
    (issue,) = _issues("latin1.yaml")
    assert (issue.line, issue.column) == (2, 17)
    assert "UTF-8" in issue.message


def test_python_tags_are_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.yaml"
    f.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\ndescription: x\nsystem_prompt: y\n')
    (issue,) = validate_file(f)
    assert "not allowed" in issue.message
    assert not marker.exists()


def test_alias_bomb_is_rejected_quickly():
    import time

    t = time.perf_counter()
    (issue,) = _issues("alias_bomb.yaml")
    assert "aliases" in issue.message
    assert time.perf_counter() - t < 5  # 9**7 values if expanded; must stop long before


def test_huge_file_is_rejected_without_reading_it_all(tmp_path):
    f = tmp_path / "huge.yaml"
    f.write_bytes(b"name: x\n" + b"#" * (MAX_FILE_BYTES + 10))
    with pytest.raises(ValidationError) as err:
        load_yaml_file(f)
    assert "limit" in str(err.value) and "huge.yaml:1:1" in str(err.value)


def test_positions_are_recorded_for_nested_values():
    doc = parse_yaml("a:\n  b:\n    - x\n    - y\n", "t.yaml")
    assert doc.where(("a", "b", 1)) == (4, 7)
    assert doc.where(("a", "missing")) == (2, 3)


def test_empty_file_lists_required_fields(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("# nothing\n")
    (issue,) = validate_file(f)
    assert "name, description, system_prompt" in issue.message


def test_trait_pairs_and_name_are_checked(tmp_path):
    traits = tmp_path / "traits"
    traits.mkdir()
    f = traits / "grumpy.yaml"
    f.write_text(
        "name: grump\ndescription: d\neliciting: [a, b]\nsuppressing: [c]\n"
        "questions:\n  extraction: [q1]\n  evaluation: [q1]\n"
    )
    text = "\n".join(str(i) for i in validate_file(f))
    assert "must equal the file name 'grumpy'" in text
    assert "'suppressing' has 1 instructions but 'eliciting' has 2" in text
    assert "evaluation question repeats an extraction question" in text


def test_policy_warn_above_act_is_reported(tmp_path):
    f = tmp_path / "policy.yaml"
    f.write_text(
        "signals:\n  evil: {warn: 3, act: 2, action: block}\n  persona_drift: {warn: 1, act: 2, action: smash}\n"
    )
    text = "\n".join(str(i) for i in validate_file(f))
    assert "policy.yaml:2:16: warn (3) is above act (2)" in text
    assert "choose one of flag, cap, counter_steer, regenerate, block" in text


def _run_validate(*files: Path):
    return subprocess.run(
        [sys.executable, "-m", "playground", "validate", *map(str, files)], capture_output=True, text=True, cwd=REPO
    )


def test_validate_cli_exit_codes_and_line_format():
    good = _run_validate(REPO / "personas" / "assistant.yaml", REPO / "personas" / "role_models" / "educator.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout == ""
    bad = _run_validate(REPO / "personas" / "pirate.yaml", BAD / "unknown_fields.yaml", BAD / "duplicate_key.yaml")
    assert bad.returncode == 1
    lines = bad.stdout.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        path, row, col, message = line.split(":", 3)
        assert Path(path).name in ("unknown_fields.yaml", "duplicate_key.yaml")
        assert int(row) >= 1 and int(col) >= 1 and message.strip()


def test_validate_cli_missing_file():
    r = _run_validate(REPO / "personas" / "nope.yaml")
    assert r.returncode == 1
    assert r.stdout.strip().endswith("nope.yaml:1:1: file not found")


def test_control_characters_are_a_located_error(tmp_path):
    bad = tmp_path / "nul.yaml"
    bad.write_bytes(b"name: Nul\ndescription: a\x00b\nsystem_prompt: x\n")
    issues = validate_file(bad)
    assert len(issues) == 1 and str(issues[0]).startswith(f"{bad}:2:15: character 0x0000 is not allowed")


def test_duplicate_keys_are_reported_with_every_other_problem_and_a_syntax_error_says_the_rest_was_unchecked(
    tmp_path,
):
    """Issue 18: validate reported 1 problem, then 7 once the first was fixed."""
    f = tmp_path / "dup.yaml"
    f.write_text(
        "name: A\ndescription: d\nsystem_prompt: s\nname: B\nsteering: {humorous: 5}\nsampling: {temprature: 0.5}\n",
        encoding="utf-8",
    )
    issues = validate_file(f, Catalog(), kind="persona")
    found = [(i.line, i.message.split(";")[0]) for i in issues]
    assert any(line == 4 and "duplicate key 'name'" in m for line, m in found), found
    assert any(line == 5 and "humorous" in m for line, m in found), found
    assert any(line == 6 and "temprature" in m for line, m in found), found
    assert [i.line for i in issues] == sorted(i.line for i in issues)
    with pytest.raises(ValidationError):  # every other loader stays strict: a duplicate never loads silently
        Catalog().load_persona_path(f)
    f.write_text("name: A\ndescription: [oops\nsystem_prompt: s\n", encoding="utf-8")
    (issue,) = validate_file(f, Catalog())
    assert "YAML syntax error" in issue.message and "nothing else in the file was checked" in issue.message
