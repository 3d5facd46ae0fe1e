"""Guardrails: ``train-screen`` trains the prompt-screening (persona hijack) probe for a model."""

from __future__ import annotations

import argparse
import sys

from .common import Subcommands, add_model_args, log_to_stderr


def register(sub: Subcommands) -> None:
    scr = sub.add_parser("train-screen", help="train the prompt-screening (persona hijack) probe for a model")
    add_model_args(scr)
    scr.add_argument("--data", default=None, help="screening data YAML (default: personas/guard/screening.yml)")
    scr.add_argument("--ship", action="store_true", help="write into models/<model>/guard (maintainers)")
    scr.set_defaults(handler=train_screen_command)


def train_screen_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..guard.screening import guard_dirs
    from ..guard.screening_data import load_screening_data
    from ..guard.screening_training import train_screening

    data = load_screening_data(args.data) if args.data else load_screening_data()
    backend = load_backend(args.model, args.backend)
    probe = train_screening(backend, data=data, log=log_to_stderr)
    folder = guard_dirs(backend.model_id)[1 if args.ship else 0]
    for path in probe.save(folder):
        print(f"wrote {path}", file=sys.stderr)
    return 0
