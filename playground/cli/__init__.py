"""Command line: ``python -m playground <command>``; each wing registers its own commands."""
