"""Every command and flag of ``python -m playground`` that existed before the CLI was split into wings still
exists, with the same choices and defaults (tests/fixtures/cli_surface.json was recorded from the old parser)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from playground.cli.main import build_parser, main

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "cli_surface.json").read_text())


def _surface(parser: argparse.ArgumentParser) -> dict:
    out: dict = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out[name] = _surface(child)
        elif not isinstance(action, argparse._HelpAction):
            key = ",".join(action.option_strings) or action.dest
            choices = list(action.choices) if action.choices else None
            default = None if callable(action.default) else action.default
            out.setdefault("__options__", []).append([key, choices, default])
    return out


def _still_accepted(recorded: list, now: list[list]) -> bool:
    """A recorded option still parses the same: its spellings are still there (new aliases may join), its default is
    unchanged, and every choice it had is still a choice (new ones may join)."""
    key, choices, default = recorded
    for now_key, now_choices, now_default in now:
        if set(key.split(",")) <= set(now_key.split(",")) and json.dumps(default) == json.dumps(now_default):
            if choices is None or (now_choices is not None and set(choices) <= set(now_choices)):
                return True
    return False


def test_every_recorded_command_and_flag_still_parses_the_same():
    now = _surface(build_parser())
    for command, spec in RECORDED.items():
        assert command in now, f"command {command!r} disappeared"
        for option in spec["__options__"]:
            assert _still_accepted(option, now[command]["__options__"]), f"{command}: {option} changed or disappeared"


def test_an_option_that_lost_a_choice_or_changed_its_default_is_caught():
    now = [["--backend,--engine", ["auto", "llama_cpp"], "auto"]]
    assert _still_accepted(["--backend", ["auto"], "auto"], now)
    assert not _still_accepted(["--backend", ["auto", "transformers"], "auto"], now)
    assert not _still_accepted(["--backend", ["auto"], "llama_cpp"], now)
    assert not _still_accepted(["--model", None, None], now)


def test_every_command_has_a_handler():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in sub.choices.items():
        assert callable(child.get_default("handler")), f"{name} has no handler"


def test_serve_is_a_command_and_launch_py_takes_the_same_flags():
    from playground.cli.serve import add_serve_args

    launch = argparse.ArgumentParser()
    add_serve_args(launch)
    serve = _surface(build_parser())["serve"]["__options__"]
    assert sorted(map(str, serve)) == sorted(map(str, _surface(launch)["__options__"]))


def test_bad_auth_is_a_one_line_error(capsys):
    assert main(["serve", "--auth", "nopassword"]) == 2
    assert capsys.readouterr().err.strip() == "error: --auth must look like user:password"


@pytest.mark.parametrize("argv", [["validate"], ["chat", "--steer"], ["nonsense"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
