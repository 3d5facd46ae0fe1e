"""Guardrails on activations: policies and the monitor, per-persona baselines, the prompt screen."""
