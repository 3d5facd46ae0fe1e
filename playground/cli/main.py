"""``python -m playground <command>``: the parser composed from every wing's commands, and the error contract.

Each wing (``cli/chat.py``, ``definitions.py``, ``steering.py``, ``guard.py``, ``evals.py``, ``serve.py`` and
``finetune/cli.py``) registers its sub-commands and their handlers; here they are only put together and run.
Exit status: the handler's; 1 for invalid definition files (each located issue printed); 2 for any other
``PlaygroundError`` (one ``error: ...`` line).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..finetune import cli as finetune_cli
from . import chat, definitions, evals, guard, serve, steering
from .common import run

WINGS = (chat, steering, guard, evals, definitions, finetune_cli, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m playground", description="Persona playground: chat, validate, steer."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for wing in WINGS:
        wing.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.handler, args)
