"""The package's layout rules (issue 15), checked by scripts/layout_check.py: no import cycles, counting imports
inside functions; no function over 80 lines; no module over 400 lines; the pipeline's subpackages exist."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("layout_check", ROOT / "scripts" / "layout_check.py")
layout_check = importlib.util.module_from_spec(_spec)
sys.modules["layout_check"] = layout_check
_spec.loader.exec_module(layout_check)

LAYOUT = layout_check.scan()


def test_no_import_cycles_counting_function_level_imports():
    assert layout_check.cycles(LAYOUT.imports) == []


def test_the_checker_sees_function_level_imports_and_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert layout_check.cycles(graph) == [["a", "b", "c"]]
    # cli.main imports the chat wing, which imports the session inside a function: the edge must be seen
    assert "playground.chat.session" in LAYOUT.imports["playground.cli.chat"]


def test_no_function_over_80_lines():
    long = [(n, where) for n, where in LAYOUT.functions if n > layout_check.MAX_FUNCTION_LINES]
    assert long == []


def test_no_module_over_400_lines():
    long = {name: n for name, n in LAYOUT.lines.items() if n > layout_check.MAX_MODULE_LINES}
    assert long == {}


def test_the_pipeline_is_visible_at_the_top_level():
    top = {p.name for p in (ROOT / "playground").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"definitions", "prompt", "backends", "steering", "guard", "chat", "ui", "evals", "finetune", "cli"} <= top
    flat = sorted(p.name for p in (ROOT / "playground").glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "errors.py", "files.py", "paths.py"]
