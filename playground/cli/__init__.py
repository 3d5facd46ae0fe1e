"""Command line: ``python -m playground <command>``; each wing registers its own commands (see ``cli.main``)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
