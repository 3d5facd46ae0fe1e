"""Shared fixtures. The real default model is loaded once per test session.

The session never reads the user's cache: ``PLAYGROUND_CACHE`` (user trait vectors, user screening probes,
fine-tuning runs; everything under ``playground.steering.store.user_cache_dir``) points at a fresh empty folder
from ``pytest_configure`` on, before any test module is imported, and the folder is removed at the end.
Subprocesses started by tests inherit it. The Hugging Face cache is left alone: the suite runs offline on
the models installed there. ``tests/test_hermetic.py`` checks this with a poisoned user cache.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_SESSION_CACHE = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="playground-test-cache-")
    config.stash[_SESSION_CACHE] = (folder, os.environ.get("PLAYGROUND_CACHE"))
    os.environ["PLAYGROUND_CACHE"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder, before = config.stash.get(_SESSION_CACHE, (None, None))
    if folder is None:
        return
    if before is None:
        os.environ.pop("PLAYGROUND_CACHE", None)
    else:
        os.environ["PLAYGROUND_CACHE"] = before
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def torch_on_one_thread():
    """For modules that build and run torch models on the test's own thread: with more than one torch thread
    there, a second OpenMP thread team would stay alive and slow every later llama.cpp test 3x (libgomp
    throttles once it manages more threads than there are CPUs; see docs/FINDINGS.md)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def real_backend():
    from playground.backends import load_backend

    return load_backend(None)


@pytest.fixture(scope="session")
def reference_backend(real_backend):
    """The default model generating in its prompt context: no hand-over to flash attention."""
    from playground.backends.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(real_backend.source, flash_decode=False)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def playground(real_backend):
    from playground.chat.session import Playground

    return Playground(loaded_backend=real_backend)


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_ui(pg) -> Iterator[str]:
    """Serve the Gradio UI for ``pg`` on a free local port; yields its URL and closes it afterwards."""
    from playground.ui.app import build_ui, launch_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_ui(pg, "assistant")
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


# ---- browser tests (tests/test_browser*.py): a served UI over the real model and Debian chromium ------------


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A user persona folder for the module's UI, with one broken file in it."""
    folder = tmp_path_factory.mktemp("browser-personas")
    shutil.copy(FIXTURES / "bad" / "wrong_types.yaml", folder / "broken.yaml")
    return folder


@pytest.fixture(scope="module")
def url(real_backend, user_dir):
    from playground.chat.session import Playground
    from playground.definitions.personas import SHIPPED_PERSONAS, Catalog

    pg = Playground(loaded_backend=real_backend, catalog=Catalog([SHIPPED_PERSONAS, user_dir]))
    with running_ui(pg) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    from .browser_support import shots

    assert Path(shots.CHROMIUM).exists(), f"{shots.CHROMIUM} missing: `make test` installs Debian chromium"
    with sync_api.sync_playwright() as p:
        b = shots.launch_browser(p)
        yield b
        b.close()


@pytest.fixture()
def out_dir(tmp_path):
    """Where screenshots go: the test's temp folder, or docs/ with UPDATE_SCREENSHOTS=1."""
    return REPO / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
