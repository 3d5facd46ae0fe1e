"""Shared fixtures. The real default model is loaded once per test session."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
    from playground.session import Playground

    return Playground(loaded_backend=real_backend)


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_ui(pg) -> Iterator[str]:
    """Serve the Gradio UI for ``pg`` on a free local port; yields its URL and closes it afterwards."""
    from playground.ui import build_ui, launch_options

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
