"""Per-request steering, guard interventions and row capture on vLLM's decoder layers (worker side).

vLLM runs every scheduled request in one flattened batch: request ``i``'s tokens are rows
``query_start_loc[i]:query_start_loc[i + 1]`` of each layer's output, in the order of the model runner's
``input_batch.req_ids``. One forward hook per decoder layer walks that map and touches only the rows of requests
that asked for something at that layer, so two requests in one batch can be steered differently and neither sees
the other's vector. Decoder layers here return ``(hidden, residual)`` with the residual add deferred to the next
layer; the residual stream after a block is their sum, and adding to ``hidden`` adds to the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

KEY = "playground_key"  # SamplingParams.extra_args entry naming the playground's request


@dataclass
class Change:
    """A guard intervention: ``cap`` clamps the projection on ``unit`` at ``value``; ``add`` adds ``value * unit``."""

    layer: int
    unit: torch.Tensor
    kind: str
    value: float


@dataclass
class RequestState:
    """What one request asked for, and the rows captured for it since they were last collected."""

    steer: dict[int, torch.Tensor]
    capture: frozenset[int]
    every_row: bool  # teacher-forced: keep every row, not only the one that chose the next token
    changes: list[Change] = field(default_factory=list)
    rows: dict[int, list[torch.Tensor]] = field(default_factory=dict)

    def layers(self) -> set[int]:
        return set(self.steer) | set(self.capture) | {c.layer for c in self.changes}


def decoder_layers(model: Any) -> Any:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise RuntimeError(f"cannot find the decoder layers of {type(model).__name__} (expected model.model.layers)")
    return layers


def _query_starts() -> list[int] | None:
    """The batch's row offsets per request from the forward context (None outside a model forward)."""
    from vllm.forward_context import get_forward_context, is_forward_context_available

    if not is_forward_context_available():
        return None
    meta = get_forward_context().attn_metadata
    if isinstance(meta, list):
        meta = meta[0] if meta else None
    if not meta:
        return None
    for one in meta.values() if isinstance(meta, dict) else [meta]:
        starts = getattr(one, "query_start_loc", None)
        if starts is not None:
            return [int(v) for v in starts.tolist()]
    return None


class BatchHooks:
    """Forward hooks on every decoder layer, acting per request; ``states`` is keyed by the playground's id."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.states: dict[str, RequestState] = {}
        self._keys: dict[str, str] = {}  # vLLM's internal request id -> the playground's
        self._active: set[int] = set()
        self._handles = [
            layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(decoder_layers(runner.model))
        ]

    def add(self, key: str, state: RequestState) -> None:
        self.states[key] = state
        self.refresh()

    def remove(self, key: str) -> None:
        self.states.pop(key, None)
        self._keys = {k: v for k, v in self._keys.items() if v != key}
        self.refresh()

    def refresh(self) -> None:
        self._active = set().union(*(s.layers() for s in self.states.values())) if self.states else set()

    def take_rows(self, key: str, count: int) -> dict[int, torch.Tensor]:
        """The last ``count`` rows captured per layer (the ones that chose the newest tokens); clears the store."""
        state = self.states[key]
        out = {}
        for layer, parts in state.rows.items():
            rows = torch.cat(parts) if parts else torch.zeros((0, 0))
            out[layer] = rows if state.every_row else rows[-count:]
        state.rows = {}
        return out

    def _key_of(self, internal: str) -> str | None:
        if internal not in self._keys:
            request = self.runner.requests.get(internal)
            extra = getattr(getattr(request, "sampling_params", None), "extra_args", None) or {}
            self._keys[internal] = extra.get(KEY, "")
        return self._keys[internal] or None

    def _hook(self, layer: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            if layer not in self._active:
                return
            starts = _query_starts()
            if starts is None:
                return
            hidden, residual = output
            batch = self.runner.input_batch
            for i, internal in enumerate(batch.req_ids[: batch.num_reqs]):
                key = self._key_of(internal)
                state = self.states.get(key) if key else None
                if state is not None:
                    self._act(state, layer, hidden, residual, starts[i], starts[i + 1])

        return hook

    @staticmethod
    def _act(state: RequestState, layer: int, hidden: torch.Tensor, residual: Any, a: int, b: int) -> None:
        if layer in state.steer:
            hidden[a:b] += state.steer[layer].to(hidden.dtype)
        for change in state.changes:
            if change.layer != layer:
                continue
            unit = change.unit.to(hidden.dtype)
            if change.kind == "add":
                hidden[a:b] += change.value * unit
            else:  # cap: the stream is hidden + residual; lower its projection by the excess
                stream = hidden[a:b] + residual[a:b] if residual is not None else hidden[a:b]
                excess = torch.clamp(stream @ unit - change.value, min=0.0)
                hidden[a:b] -= excess[:, None] * unit[None, :]
        if layer in state.capture:
            stream = hidden[a:b] + residual[a:b] if residual is not None else hidden[a:b]
            kept = stream if state.every_row else stream[-1:]
            state.rows.setdefault(layer, []).append(kept.detach().float().clone())
