"""Persona Playground."""
