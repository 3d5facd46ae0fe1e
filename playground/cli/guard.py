"""Guardrails: ``train-screen`` trains the prompt-screening (persona hijack) probe for a model;
``guard-thresholds`` derives the reply-phase thresholds from ordinary replies."""

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
    thr = sub.add_parser(
        "guard-thresholds",
        help="derive the reply-phase guard thresholds from ordinary replies of every shipped persona (~8 min)",
    )
    add_model_args(thr)
    thr.add_argument("--max-tokens", type=int, default=64, help="tokens per reply (default 64)")
    thr.add_argument(
        "--ship",
        action="store_true",
        help="store the peaks under models/<model>/guard and rewrite personas/policies/default.yaml (maintainers)",
    )
    thr.add_argument(
        "--reuse",
        action="store_true",
        help="derive from the peaks already stored for this model (same messages and personas) instead of measuring",
    )
    thr.set_defaults(handler=guard_thresholds_command)


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


def guard_thresholds_command(args: argparse.Namespace) -> int:
    from ..chat.session import Playground
    from ..errors import PlaygroundError
    from ..evals.reply_peaks import PEAKS_FILE, derive_and_write
    from ..guard.screening import guard_dirs

    pg = Playground(args.model, backend=args.backend)
    folder = guard_dirs(pg.backend.model_id)[1 if args.ship else 0]
    reuse = next((d / PEAKS_FILE for d in guard_dirs(pg.backend.model_id) if (d / PEAKS_FILE).is_file()), None)
    if args.reuse and reuse is None:
        raise PlaygroundError("--reuse: no stored peaks for this model yet; run without --reuse first")
    derive_and_write(
        pg,
        folder,
        update_policy=args.ship,
        max_tokens=args.max_tokens,
        reuse=reuse if args.reuse else None,
        log=log_to_stderr,
    )
    if not args.ship:
        print(
            f"the shipped policy uses them on {pg.backend.model_id} from now on; a policy file of your own keeps its "
            "numbers (copy these into it to use them there)",
            file=sys.stderr,
        )
    return 0
