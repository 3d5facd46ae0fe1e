"""``python -m playground bench``: what probes, guardrails and steering cost, measured side by side."""
