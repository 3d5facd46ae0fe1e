"""Persona vectors: ``extract`` a trait vector, ``calibrate`` the live probes and the strength scale,
``export-vector`` / ``import-vector`` as control-vector GGUFs, ``persona-space`` (characters in the residual
stream)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import Subcommands, add_model_args, log_to_stderr


def register(sub: Subcommands) -> None:
    ext = sub.add_parser("extract", help="extract a trait vector (and its calibration) for a model")
    ext.add_argument("--trait", required=True, action="append", help="trait name or path to a trait YAML (repeatable)")
    add_model_args(ext)
    ext.add_argument("--max-tokens", type=int, default=40, help="reply length used for extraction")
    ext.add_argument("--ship", action="store_true", help="write into models/<model>/vectors (maintainers)")
    ext.add_argument(
        "--regenerate",
        action="store_true",
        help="generate new extraction replies instead of re-reading the stored ones (their greedy text depends on "
        "the CPU's rounding; see docs/FINDINGS.md)",
    )
    ext.set_defaults(handler=extract_command)

    cal = sub.add_parser(
        "calibrate",
        help="fit every trait's live probe jointly (specific to its trait, 0 = a typical assistant reply) and "
        "validate what steering strength 1 means on 32 questions",
    )
    cal.add_argument("--trait", action="append", default=None, help="limit the strength check to these traits")
    cal.add_argument("--method", default="lda", help="probe method (see playground/steering/probe_fit.py)")
    cal.add_argument("--skip-probes", action="store_true", help="only validate the strength scale")
    cal.add_argument("--skip-strength", action="store_true", help="only fit the probes")
    add_model_args(cal)
    cal.add_argument("--ship", action="store_true", help="write into models/<model>/vectors (maintainers)")
    cal.set_defaults(handler=calibrate_command)

    prep = sub.add_parser(
        "prepare",
        help="every instrument for a model in one command: extract each trait, calibrate, train the prompt screen "
        "and check it on held-out prompts, measure the guard's reply thresholds, write a model card (resumable; "
        "progress bar; 25-28 min for the 135M and 270M models measured on 2 cores)",
    )
    add_model_args(prep)
    prep.add_argument("--traits", default=None, help="comma-separated subset of the traits (default: all)")
    prep.add_argument("--no-screen", action="store_true", help="skip the prompt screen and its check")
    prep.add_argument("--force", action="store_true", help="start over instead of resuming")
    prep.set_defaults(handler=prepare_command)

    space = sub.add_parser(
        "persona-space",
        help="place ~70 characters in the model's residual stream (PCA): every chat reply then gets persona_map "
        "coordinates and its nearest characters (~2 min on 2 cores)",
    )
    add_model_args(space)
    space.add_argument("--layer", type=int, default=None, help="residual layer (default: persona_drift's probe layer)")
    space.add_argument("--report", default=None, metavar="DIR", help="also write DIR/PERSONA_SPACE.md and plots")
    space.add_argument("--ship", action="store_true", help="write into models/<model>/space (maintainers)")
    space.set_defaults(handler=persona_space_command)

    xv = sub.add_parser("export-vector", help="write a trait vector as a llama.cpp / repeng control-vector GGUF")
    xv.add_argument("trait")
    xv.add_argument("--format", choices=["gguf"], default="gguf")
    xv.add_argument("--out", default=None, help="file to write (default: TRAIT.gguf)")
    xv.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_model_args(xv)
    xv.set_defaults(handler=export_vector_command)

    iv = sub.add_parser("import-vector", help="import a llama.cpp / repeng control-vector GGUF as a trait")
    iv.add_argument("file")
    iv.add_argument("--name", default=None, help="trait name (default: the file name)")
    add_model_args(iv)
    iv.set_defaults(handler=import_vector_command)


def extract_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..definitions.traits import load_trait
    from ..steering.extraction import extract_with_replies
    from ..steering.store import VectorStore

    traits = [load_trait(t) for t in args.trait]
    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id)
    for trait in traits:
        stored = None if args.regenerate or trait.name not in store.names() else store.replies(trait.name)
        vec, replies = extract_with_replies(
            backend, trait, max_tokens=args.max_tokens, replies=stored, log=log_to_stderr
        )
        path = store.save(vec, shipped=args.ship, replies=replies)
        print(f"wrote {path}", file=sys.stderr)
    print(
        "the live probes of re-extracted traits now read their steering direction; refit them all with: "
        "python -m playground calibrate" + (" --ship" if args.ship else ""),
        file=sys.stderr,
    )
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..errors import PlaygroundError
    from ..steering.probe_fit import METHODS
    from ..steering.probe_training import fit_all_probes
    from ..steering.store import VectorStore
    from ..steering.strength_check import validate_strengths

    if args.method not in METHODS:
        raise PlaygroundError(f"--method: unknown probe method '{args.method}' (known: {', '.join(METHODS)})")
    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id)
    if not store.names():
        raise PlaygroundError(
            f"no trait vectors for {backend.model_id}; extract them first (python -m playground extract)"
        )
    if not args.skip_probes:
        fit_all_probes(backend, store, method=args.method, shipped=args.ship, log=log_to_stderr)
    if args.skip_strength:
        return 0
    validate_strengths(backend, store, args.trait or store.names(), shipped=args.ship, log=log_to_stderr)
    return 0


def prepare_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..evals.prepare import card_folder, prepare_model

    backend = load_backend(args.model, args.backend)
    traits = [t.strip() for t in args.traits.split(",") if t.strip()] if args.traits else None
    prepare_model(backend, traits, screen=not args.no_screen, force=args.force, log=log_to_stderr)
    card = card_folder(backend.model_id) / "MODEL_CARD.md"
    print(card.read_text())
    print(f"wrote {card}", file=sys.stderr)
    return 0


def export_vector_command(args: argparse.Namespace) -> int:
    from ..backends.model_source import resolve_model
    from ..steering.exchange import export_vector
    from ..steering.store import VectorStore

    model_id = resolve_model(args.model).model_id
    vec = VectorStore(model_id).get(args.trait)
    path = export_vector(vec, args.out or f"{args.trait}.gguf", force=args.force)
    print(f"wrote {path} ({len(vec.directions)} layers; use with llama.cpp --control-vector)", file=sys.stderr)
    return 0


def import_vector_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..steering.exchange import import_vector
    from ..steering.store import VectorStore

    backend = load_backend(args.model, args.backend)
    vec = import_vector(backend, args.file, args.name or Path(args.file).stem)
    path = VectorStore(backend.model_id).save(vec)
    print(
        f"wrote {path}: trait '{vec.trait}', probe layer {vec.probe_layer}, steer layer {vec.steer_layer}; "
        f"try: python -m playground chat --steer {vec.trait}=1",
        file=sys.stderr,
    )
    return 0


def persona_space_command(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..chat.session import Playground
    from ..evals.persona_space_report import write_space_report
    from ..steering.persona_space import build_space, space_dirs
    from ..steering.store import VectorStore

    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id)
    drift = store.get("persona_drift") if "persona_drift" in store.names() else None
    layer = args.layer if args.layer is not None else drift.probe_layer if drift else backend.n_layers // 2
    pg = Playground(loaded_backend=backend)
    space = build_space(backend, pg.catalog, layer, steer=pg.steering_for, log=log_to_stderr)
    print(f"wrote {space.save(space_dirs(backend.model_id)[1 if args.ship else 0])}", file=sys.stderr)
    if args.report:
        command = f"python -m playground persona-space --report {args.report}"
        print(f"wrote {write_space_report(space, drift, Path(args.report), command)}", file=sys.stderr)
    return 0
