"""The names promised in playground/__init__.py resolve, and importing the package stays cheap."""

from __future__ import annotations

import subprocess
import sys

import playground


def test_every_exported_name_resolves():
    for name in playground.__all__:
        assert getattr(playground, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    try:
        playground.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_the_model_runtime():
    code = "import sys, playground; print('llama_cpp' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
