"""Persona vectors: extraction, storage, exchange, the strength scale, calibrated probes and steering, the judge."""
