"""The vLLM worker process seen from the playground: start it with vLLM's own Python, talk over a local socket,
route each reply's messages to the request that asked, stop it cleanly.

vLLM pins its own torch/transformers, so it lives in a virtual environment of its own (``make vllm`` builds
``.venv/engines/vllm``); the worker imports only this package's ``backends.vllm_worker`` from it.
"""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .vllm_worker.wire import AUTH_ENV

PYTHON_ENV = "PLAYGROUND_VLLM_PYTHON"
START_TIMEOUT_S = 300.0
INSTALL_HINT = "build it with `make vllm` (vLLM's CPU build in .venv/engines/vllm; `make test` builds it too)"


def vllm_python() -> Path:
    """The Python of vLLM's environment: $PLAYGROUND_VLLM_PYTHON, else .venv/engines/vllm beside this venv."""
    explicit = os.environ.get(PYTHON_ENV)
    path = Path(explicit) if explicit else Path(sys.prefix) / "engines" / "vllm" / "bin" / "python"
    if not path.exists():
        raise ModelError(f"the vLLM engine is not installed ({path} is missing): {INSTALL_HINT}")
    return path


def _package_path(into: Path) -> str:
    """A folder holding only this package (a link), so the worker cannot import the playground venv's packages."""
    package = Path(__file__).resolve().parents[1]
    (into / "playground").symlink_to(package, target_is_directory=True)
    return str(into)


class WorkerProcess:
    """One vLLM worker serving one model; thread-safe: any thread may submit, each request reads its own queue."""

    def __init__(self, folder: Path, max_seqs: int, max_len: int, log: Callable[[str], None]) -> None:
        python = vllm_python()
        self._tmp = Path(tempfile.mkdtemp(prefix="playground-vllm-"))
        self._send_lock = threading.Lock()
        self._queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._queues_lock = threading.Lock()
        self.fatal: str | None = None
        address = str(self._tmp / "socket")
        key = secrets.token_bytes(16)
        listener = Listener(address, family="AF_UNIX", authkey=key)
        env = {**os.environ, AUTH_ENV: key.hex(), "PYTHONPATH": _package_path(self._tmp)}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of keys/values: ample for a 135M model and 32 chats
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        args = [
            str(python),
            "-m",
            "playground.backends.vllm_worker",
            address,
            str(folder),
            str(max_seqs),
            str(max_len),
        ]
        self._log_file = open(self._tmp / "worker.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(args, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        log(f"starting the vLLM engine (worker pid {self.proc.pid}; log {self._tmp / 'worker.log'}) ...")
        try:
            self.conn = self._accept(listener)
            ready = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise ModelError(f"the vLLM worker stopped while starting: {self._log_tail()}") from exc
        finally:
            listener.close()
        if ready.get("op") != "ready":
            self.close()
            raise ModelError(f"the vLLM worker could not load {folder}: {ready.get('message')}\n{self._log_tail()}")
        self.info = ready
        atexit.register(self.close)
        threading.Thread(target=self._route, name="vllm-replies", daemon=True).start()

    def _accept(self, listener: Listener) -> Connection:
        box: list[Connection] = []
        waiter = threading.Thread(target=lambda: box.append(listener.accept()), daemon=True)
        waiter.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while waiter.is_alive():
            waiter.join(0.2)
            if self.proc.poll() is not None and not box:
                raise OSError(f"worker exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise OSError(f"no connection in {START_TIMEOUT_S:.0f} s")
        return box[0]

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = (self._tmp / "worker.log").read_text(errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])

    def _route(self) -> None:
        try:
            while True:
                message = self.conn.recv()
                if message.get("op") == "fatal":
                    raise EOFError(message.get("message"))
                with self._queues_lock:
                    target = self._queues.get(message.get("id", ""))
                if target is not None:
                    target.put(message)
        except (EOFError, OSError) as exc:
            self.fatal = f"the vLLM worker stopped: {exc or 'connection closed'}"
            with self._queues_lock:
                for target in self._queues.values():
                    target.put({"op": "error", "message": self.fatal})

    def send(self, message: dict[str, Any]) -> None:
        if self.fatal:
            raise ModelError(self.fatal)
        with self._send_lock:
            self.conn.send(message)

    def open(self, request_id: str) -> queue.Queue[dict[str, Any]]:
        inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._queues_lock:
            self._queues[request_id] = inbox
        return inbox

    def forget(self, request_id: str) -> None:
        with self._queues_lock:
            self._queues.pop(request_id, None)

    def close(self) -> None:
        if self._log_file.closed:
            return
        atexit.unregister(self.close)
        try:
            if getattr(self, "conn", None) is not None and self.proc.poll() is None:
                with self._send_lock:
                    self.conn.send({"op": "stop"})
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
