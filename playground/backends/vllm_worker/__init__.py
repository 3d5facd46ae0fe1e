"""The vLLM engine's worker: runs in vLLM's own virtual environment (``.venv/engines/vllm``), one process per
model, driven by :mod:`playground.backends.vllm_engine` over a local socket.

Only :mod:`.wire` is imported by the playground's side; the other modules import ``vllm`` and ``torch`` and run
in the worker process alone.
"""
