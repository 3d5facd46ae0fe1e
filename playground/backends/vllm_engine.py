"""The vLLM engine behind the backend protocol: continuous batching for many chats at once, with each request's
own steering, guard interventions and probe rows (see ``vllm_worker/hooks.py`` for how one batch is split).

Tokenizing, the chat template, probes, calibration and the guard stay in the playground's process, exactly as
on the other backends; only token ids, steering vectors and residual rows cross to the worker.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ModelError
from .base import Interventions, Steering, Step, check_layer
from .gguf_folder import ensure_converted
from .hf_tokens import HfTokenMethods, HfTokens
from .model_source import ModelSource
from .sampling import Sampling
from .vllm_process import WorkerProcess, vllm_python
from .vllm_worker.wire import unpack

MAX_SEQS = 32  # requests in one running batch; more wait in vLLM's queue
_ids = itertools.count()

NOTICES = (
    "vLLM engine: sampling is vLLM's (the same seed gives a different text than llama.cpp), and its repetition "
    "penalty counts the prompt's tokens too",
    "vLLM engine: a guard cap or counter-steer acts from the next step the worker runs after the decision "
    "(one or two tokens later than on llama.cpp: the batch does not wait for one chat's probes)",
)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_folder(source: ModelSource, log: Callable[[str], None]) -> Any:
    """The model as a transformers folder (a GGUF is de-quantised once into the user cache) and its tokenizer."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    def load(where: str, extra: dict[str, str]) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True, **extra)
        return tokenizer, AutoModelForCausalLM.from_pretrained(where, local_files_only=True, **extra)

    folder = ensure_converted(source.path, load, log) if source.kind == "gguf" else source.path
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    try:
        generation = GenerationConfig.from_pretrained(str(folder), local_files_only=True)
    except OSError:
        generation = None
    return folder, HfTokens(tokenizer, generation, config)


def _sampling(s: Sampling) -> dict[str, Any]:
    return {
        "temperature": float(s.temperature),
        "top_p": float(s.top_p),
        "top_k": int(s.top_k),
        "repeat_penalty": float(s.repeat_penalty),
        "seed": s.seed,
        "max_tokens": int(s.max_tokens),
    }


class VllmBackend(HfTokenMethods):
    name = "vllm"
    max_concurrent = MAX_SEQS  # replies the playground lets run at once (chat/generation_gate.py)

    def __init__(self, source: ModelSource, n_ctx: int = 4096, log: Callable[[str], None] = _stderr) -> None:
        if source.kind not in ("gguf", "hf"):
            raise ModelError(f"{source.path}: unknown model kind '{source.kind}' (expected 'gguf' or 'hf')")
        self.source = source
        self.model_id = source.model_id
        vllm_python()  # not installed: say so before converting anything
        try:
            folder, self.tokens = _load_folder(source, log)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{source.path}: could not read the model for vLLM: {exc}") from exc
        self.template = self.tokens.template
        self.n_ctx = n_ctx
        self._start = lambda: WorkerProcess(folder, MAX_SEQS, n_ctx, log)
        self._restart_lock = threading.Lock()
        self.worker = self._start()
        self.n_layers = int(self.worker.info["n_layers"])
        self.d_model = int(self.worker.info["d_model"])
        self.notices: list[str] = list(NOTICES)
        self.closed = False
        log(f"vLLM {self.worker.info['vllm']} ready in {self.worker.info['startup_s']} s")

    # -- requests -------------------------------------------------------------------------------------

    def _check_layer(self, layer: int) -> int:
        return check_layer(layer, self.n_layers)

    def _steer(self, steering: Steering | None) -> dict[int, bytes]:
        out = {}
        for layer, vec in (steering.additions if steering else {}).items():
            arr = np.ascontiguousarray(vec, dtype=np.float32).reshape(-1)
            self._check_layer(layer)
            if arr.shape != (self.d_model,):
                raise ModelError(f"steering vector for layer {layer} has {arr.size} values, expected {self.d_model}")
            if np.any(arr):
                out[int(layer)] = arr.tobytes()
        return out

    def _submit(
        self, prompt: list[int], sampling: Sampling, steering: Steering | None, capture: Sequence[int], every_row: bool
    ) -> tuple[str, queue.Queue[dict[str, Any]]]:
        if not prompt:
            raise ModelError("empty prompt")
        if len(prompt) >= self.n_ctx:
            raise ModelError(f"prompt has {len(prompt)} tokens; the context holds {self.n_ctx}")
        for layer in capture:
            self._check_layer(layer)
        self._revive()
        request_id = f"r{next(_ids)}"
        inbox = self.worker.open(request_id)
        message = {
            "op": "submit",
            "id": request_id,
            "prompt": [int(t) for t in prompt],
            "sampling": _sampling(sampling),
            "steer": self._steer(steering),
            "capture": sorted({int(x) for x in capture}),
            "every_row": every_row,
            "stop_ids": [] if every_row else self.tokens.end_ids,
            "salt": steering.fingerprint() if steering else "plain",
        }
        try:
            self.worker.send(message)
        except BaseException:
            self.worker.forget(request_id)
            raise
        return request_id, inbox

    def _revive(self) -> None:
        """A worker that died (its replies in flight have had their error) is replaced before the next request."""
        with self._restart_lock:
            if self.worker.fatal:
                self.worker.close()
                self.worker = self._start()

    @staticmethod
    def _next(inbox: queue.Queue[dict[str, Any]]) -> dict[str, Any]:
        message = inbox.get()
        if message["op"] == "error":
            raise ModelError(f"vLLM: {message['message']}")
        return message

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        steering: Steering | None = None,
        capture: Sequence[int] = (),
        interventions: Interventions | None = None,
    ) -> Iterator[Step]:
        request_id, inbox = self._submit(prompt, sampling, steering, capture, every_row=False)
        sent = 0
        finished = False
        try:
            while True:
                if interventions is not None and len(interventions) > sent:
                    sent = self._forward_interventions(request_id, interventions, sent)
                message = self._next(inbox)
                if message["op"] == "done":
                    finished = True
                    return
                rows = {int(k): unpack(v) for k, v in message["rows"].items()}
                for i, token in enumerate(message["tokens"]):
                    if self.is_end(token):
                        continue  # the request ends here; its 'done' follows
                    hidden = {layer: r[i].copy() for layer, r in rows.items()} if capture else None
                    yield Step(int(token), hidden)
                    if interventions is not None and len(interventions) > sent:
                        sent = self._forward_interventions(request_id, interventions, sent)
        finally:
            if not finished and not self.worker.fatal:
                with contextlib.suppress(ModelError, OSError):
                    self.worker.send({"op": "abort", "id": request_id})
            self.worker.forget(request_id)

    def _forward_interventions(self, request_id: str, interventions: Interventions, sent: int) -> int:
        items = interventions.snapshot()
        for item in items[sent:]:
            unit = np.ascontiguousarray(item.unit, dtype=np.float32).tobytes()
            message = {
                "op": "intervene",
                "id": request_id,
                "layer": int(item.layer),
                "unit": unit,
                "kind": item.kind,
                "value": float(item.value),
            }
            self.worker.send(message)
        return len(items)

    def _teacher_forced(
        self, tokens: list[int], layers: Sequence[int], steering: Steering | None
    ) -> tuple[dict[int, np.ndarray], list[float | None]]:
        once = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_tokens=1, repeat_penalty=1.0, seed=0)
        request_id, inbox = self._submit(tokens, once, steering, layers, every_row=True)
        try:
            rows: dict[int, np.ndarray] = {}
            logprobs: list[float | None] = []
            while True:
                message = self._next(inbox)
                if message["op"] == "rows":
                    rows = {int(k): unpack(v)[: len(tokens)] for k, v in message["rows"].items()}
                    logprobs = list(message["logprobs"])
                elif message["op"] == "done":
                    return rows, logprobs
        finally:
            self.worker.forget(request_id)

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None, start: int = 0
    ) -> dict[int, np.ndarray]:
        if not 0 <= start <= len(tokens):
            raise ModelError(f"start must be in 0..{len(tokens)}, got {start}")
        if not tokens:
            return {layer: np.zeros((0, self.d_model), dtype=np.float32) for layer in layers}
        rows, _ = self._teacher_forced(list(tokens), layers, steering)
        return {layer: rows[layer][start:] for layer in layers}

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        return self.score_tokens(tokens, start, (), steering=steering)[0]

    def score_tokens(
        self, tokens: list[int], start: int, layers: Sequence[int], *, steering: Steering | None = None
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        if not 1 <= start <= len(tokens):
            raise ModelError(f"start must be in 1..{len(tokens)}, got {start}")
        rows, logprobs = self._teacher_forced(list(tokens), layers, steering)
        values = np.array([np.nan if v is None else v for v in logprobs[start:]], dtype=np.float32)
        return values, {layer: rows[layer][start - 1 : len(tokens) - 1] for layer in layers}

    @contextlib.contextmanager
    def reference_decoding(self) -> Iterator[None]:
        """One generation path: nothing to switch."""
        yield

    def close(self) -> None:
        self.closed = True
        self.worker.close()


_SHARED: dict[tuple[str, int], VllmBackend] = {}
_SHARED_LOCK = threading.Lock()


def shared_engine(source: ModelSource, n_ctx: int = 4096) -> VllmBackend:
    """One vLLM engine per model and context size in a process: a second Playground on the same model (the API
    beside the UI, a command run in-process) joins its batch instead of starting another worker (~3 GB)."""
    key = (str(source.path), n_ctx)
    with _SHARED_LOCK:
        engine = _SHARED.get(key)
        if engine is None or engine.closed:
            engine = _SHARED[key] = VllmBackend(source, n_ctx=n_ctx)
        return engine
