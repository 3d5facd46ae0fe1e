"""The worker's loop: vLLM's engine in this process (so the hooks see each step), requests in, tokens out.

A reader thread queues the playground's messages; the loop admits them between engine steps and sends every
request's new tokens (with the rows that chose them) after each step. Continuous batching is vLLM's: requests
join and leave the running batch at any step.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from typing import Any

import torch

from .hooks import KEY, BatchHooks, Change, RequestState
from .wire import pack


def build_engine(folder: str, max_seqs: int, max_len: int) -> Any:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the model in this process, where our hooks are
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.engine.llm_engine import LLMEngine

    args = EngineArgs(
        model=folder,
        skip_tokenizer_init=True,  # the playground tokenizes; tokens cross the socket
        dtype=os.environ.get("PLAYGROUND_VLLM_DTYPE", "float32"),  # float32: readouts equal to transformers'
        max_model_len=max_len,
        enforce_eager=True,  # forward hooks do not run inside CUDA graphs or compiled graphs
        enable_prefix_caching=True,  # keyed by a cache salt: steered prompts never share cached keys/values
        max_num_seqs=max_seqs,
        # whole prompts only: vLLM's CPU sampler cannot rewind a seeded request's generator after a partial
        # prefill ("CPU Generator does not use offset"), and a captured row is always the one that chose a token
        enable_chunked_prefill=False,
        max_num_batched_tokens=max(max_len, 2048),
    )
    return LLMEngine.from_engine_args(args)


def model_runner(engine: Any) -> Any:
    return engine.engine_core.engine_core.model_executor.driver_worker.worker.model_runner


def _vector(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.float32)


class EngineLoop:
    def __init__(self, engine: Any, conn: Any) -> None:
        self.engine = engine
        self.conn = conn
        self.hooks = BatchHooks(model_runner(engine))
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.live: set[str] = set()
        self.prompts: dict[str, list[int]] = {}
        self.running = True

    def read_forever(self) -> None:
        try:
            while True:
                self.inbox.put(self.conn.recv())
        except (EOFError, OSError):
            self.inbox.put({"op": "stop"})

    def run(self) -> None:
        threading.Thread(target=self.read_forever, name="vllm-inbox", daemon=True).start()
        while self.running:
            self._admit(block=not self.live)
            if self.live and self.running:
                self._step()

    def _admit(self, block: bool) -> None:
        try:
            message = self.inbox.get(timeout=None) if block else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(message)
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "stop":
            self.running = False
        elif op == "submit":
            try:
                self._submit(message)
            except Exception as exc:  # a bad request fails alone; the engine keeps serving the others
                self.hooks.remove(message["id"])
                self.conn.send({"op": "error", "id": message["id"], "message": f"{type(exc).__name__}: {exc}"})
        elif op == "intervene":
            state = self.hooks.states.get(message["id"])
            if state is not None:
                unit = _vector(message["unit"])
                state.changes.append(Change(message["layer"], unit, message["kind"], float(message["value"])))
                self.hooks.refresh()
        elif op == "abort" and message["id"] in self.live:
            self.engine.abort_request([message["id"]])
            self._finish(message["id"], "abort")

    def _submit(self, m: dict[str, Any]) -> None:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        s = m["sampling"]
        every_row = bool(m.get("every_row"))
        params = SamplingParams(
            temperature=s["temperature"],
            top_p=s["top_p"],
            top_k=s["top_k"] if s["top_k"] > 0 else -1,
            repetition_penalty=s["repeat_penalty"],
            seed=s["seed"],
            max_tokens=s["max_tokens"],
            min_tokens=0 if every_row else 1,
            stop_token_ids=list(m["stop_ids"]),
            prompt_logprobs=0 if every_row else None,
            detokenize=False,
            output_kind=RequestOutputKind.DELTA,
            extra_args={KEY: m["id"]},
        )
        steer = {int(layer): _vector(data) for layer, data in m["steer"].items()}
        # every_row requests must compute every prompt row: a salt of their own skips the prefix cache
        salt = uuid.uuid4().hex if every_row else m["salt"]
        self.hooks.add(m["id"], RequestState(steer, frozenset(m["capture"]), every_row))
        prompt = TokensPrompt(prompt_token_ids=list(m["prompt"]), cache_salt=salt)
        self.engine.add_request(m["id"], prompt, params)
        self.live.add(m["id"])
        self.prompts[m["id"]] = list(m["prompt"])

    def _step(self) -> None:
        for out in self.engine.step():
            key = out.request_id
            if key not in self.live:
                continue
            tokens = [int(t) for t in out.outputs[0].token_ids] if out.outputs else []
            if self.hooks.states[key].every_row:
                if out.finished:
                    self._send_rows(key, out)
            elif tokens:
                rows = self.hooks.take_rows(key, len(tokens))
                packed = {layer: pack(r.numpy()) for layer, r in rows.items()}
                self.conn.send({"op": "tokens", "id": key, "tokens": tokens, "rows": packed})
            if out.finished:
                self._finish(key, str(out.outputs[0].finish_reason if out.outputs else None))

    def _send_rows(self, key: str, out: Any) -> None:
        """A teacher-forced request: every prompt row per layer, and each prompt token's log-probability."""
        rows = self.hooks.take_rows(key, 0)
        prompt = self.prompts[key]
        entries = list(out.prompt_logprobs or [])
        logprobs = [_logprob(entries[i] if i < len(entries) else None, t) for i, t in enumerate(prompt)]
        packed = {layer: pack(r.numpy()) for layer, r in rows.items()}
        self.conn.send({"op": "rows", "id": key, "rows": packed, "logprobs": logprobs})

    def _finish(self, key: str, reason: str) -> None:
        self.live.discard(key)
        self.prompts.pop(key, None)
        self.hooks.remove(key)
        self.conn.send({"op": "done", "id": key, "reason": reason})


def _logprob(entry: Any, token: int) -> float | None:
    if not entry:
        return None  # the first prompt token has no prediction
    found = entry.get(token)
    return float(found.logprob) if found is not None else None


def serve(conn: Any, folder: str, max_seqs: int, max_len: int) -> None:
    started = time.perf_counter()
    engine = build_engine(folder, max_seqs, max_len)
    runner = model_runner(engine)
    config = runner.model_config.hf_config
    import vllm

    conn.send(
        {
            "op": "ready",
            "n_layers": int(config.num_hidden_layers),
            "d_model": int(config.hidden_size),
            "vllm": vllm.__version__,
            "startup_s": round(time.perf_counter() - started, 2),
        }
    )
    EngineLoop(engine, conn).run()
