"""The suite never reads the user cache (issue 14).

A poisoned user cache (``$XDG_CACHE_HOME/persona-playground``: a humorous vector with its directions negated
and another probe layer, an extra trait, a screening probe with its weights negated) does not change what a
test sees: ``tests/hermetic_inner.py`` runs in a pytest subprocess with that cache and must pass. The same
checks run without pytest (so without tests/conftest.py) do see the poison, so the pass means something.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from playground.guard.screening import ScreeningProbe
from playground.steering.store import SHIPPED_MODELS, user_cache_dir
from playground.steering.vectors import TraitVector

from .conftest import REPO
from .hermetic_inner import MODEL_ID, same_probe, same_vector

INNER = Path(__file__).with_name("hermetic_inner.py")

# The inner checks without pytest: what the store serves against the poisoned files, then the inner tests.
WITHOUT_CONFTEST = """
import sys
from pathlib import Path
from playground.guard.screening import ScreeningProbe, load_screening
from playground.steering.store import VectorStore
from playground.steering.vectors import TraitVector
from tests import hermetic_inner as inner
root = Path(sys.argv[1]) / "persona-playground" / inner.MODEL_ID
store = VectorStore(inner.MODEL_ID)
print("vector", inner.same_vector(store.get("humorous"), TraitVector.load(root / "vectors" / "humorous")))
print("extra", "poison" in store.names())
print("probe", inner.same_probe(load_screening(inner.MODEL_ID), ScreeningProbe.load(root / "guard")))
for name in ("test_store_serves_only_shipped_vectors", "test_screening_probe_is_the_shipped_one"):
    try:
        getattr(inner, name)()
    except AssertionError:
        print(name, "failed")
    else:
        print(name, "passed")
"""


@pytest.fixture(scope="module")
def poisoned_xdg(tmp_path_factory) -> Path:
    """An XDG_CACHE_HOME whose persona-playground folder overrides the shipped vector and screening probe."""
    xdg = tmp_path_factory.mktemp("xdg")
    root = xdg / "persona-playground" / MODEL_ID
    vec = TraitVector.load(SHIPPED_MODELS / MODEL_ID / "vectors" / "humorous")
    other_layer = next(l for l in vec.layers if l != vec.probe_layer)
    bad = dataclasses.replace(vec, directions={l: -d for l, d in vec.directions.items()}, probe_layer=other_layer)
    assert not same_vector(bad, vec)
    bad.save(root / "vectors" / "humorous")
    dataclasses.replace(vec, trait="poison").save(root / "vectors" / "poison")
    probe = ScreeningProbe.load(SHIPPED_MODELS / MODEL_ID / "guard")
    bad_probe = dataclasses.replace(probe, coef=-probe.coef, intercept=probe.intercept + 5.0)
    assert not same_probe(bad_probe, probe)
    bad_probe.save(root / "guard")
    return xdg


def _env(xdg: Path) -> dict[str, str]:
    """This environment with the poisoned cache and without the session's redirection (nor outer pytest
    settings such as PYTEST_ADDOPTS that could deselect the inner tests)."""
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_CACHE" and not k.startswith("PYTEST_")}
    env["XDG_CACHE_HOME"] = str(xdg)
    return env


def test_session_cache_is_a_private_temp_folder() -> None:
    folder = Path(os.environ["PLAYGROUND_CACHE"])
    assert user_cache_dir() == folder
    assert folder.is_dir() and folder.parent == Path(tempfile.gettempdir())
    assert folder.name.startswith("playground-test-cache-")


def test_poisoned_user_cache_does_not_reach_tests(poisoned_xdg: Path) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(INNER)]
    run = subprocess.run(cmd, cwd=REPO, env=_env(poisoned_xdg), capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 passed" in out and "skipped" not in out, out


def test_the_poison_is_real_without_the_conftest(poisoned_xdg: Path) -> None:
    cmd = [sys.executable, "-c", WITHOUT_CONFTEST, str(poisoned_xdg)]
    run = subprocess.run(cmd, cwd=REPO, env=_env(poisoned_xdg), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split("\n")[:5] == [
        "vector True",
        "extra True",
        "probe True",
        "test_store_serves_only_shipped_vectors failed",
        "test_screening_probe_is_the_shipped_one failed",
    ], run.stdout + run.stderr
