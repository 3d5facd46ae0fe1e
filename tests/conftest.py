"""Shared fixtures. The real default model is loaded once per test session."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def real_backend():
    from playground.backends import load_backend

    return load_backend(None)


@pytest.fixture(scope="session")
def playground(real_backend):
    from playground.session import Playground

    return Playground(loaded_backend=real_backend)


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
