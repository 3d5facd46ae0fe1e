"""Command line: ``python -m playground chat|validate ...``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import PlaygroundError, ValidationError
from .personas import DEFAULT_PERSONA, Catalog
from .validation import validate_file


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="a .gguf file, a model directory or a Hub repo id (default: embedded SmolLM2-135M)",
    )
    p.add_argument("--backend", default="auto", choices=["auto", "llama_cpp", "transformers"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m playground", description="Persona playground: chat, validate, steer."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat with a persona (interactive, or one message with --json)")
    chat.add_argument("--persona", default=DEFAULT_PERSONA, help="persona id or path to a persona YAML file")
    _add_model_args(chat)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument(
        "--steer",
        action="append",
        default=[],
        metavar="TRAIT=STRENGTH",
        help="steer a trait for this reply (repeatable); strength -2..2: 0 off, 1 strong but coherent, <0 suppresses",
    )
    chat.add_argument("--json", action="store_true", help="answer MESSAGE once and print one JSON object")
    chat.add_argument("message", nargs="?", help="the message (required with --json)")

    score = sub.add_parser("score", help="probe readouts over a given reply (teacher-forced, unsteered)")
    score.add_argument("--persona", default=DEFAULT_PERSONA)
    _add_model_args(score)
    score.add_argument("--reply", required=True, help="the assistant reply to score")
    score.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    score.add_argument("message", help="the user message the reply answers")

    ext = sub.add_parser("extract", help="extract a trait vector (and its calibration) for a model")
    ext.add_argument("--trait", required=True, action="append", help="trait name or path to a trait YAML (repeatable)")
    _add_model_args(ext)
    ext.add_argument("--max-tokens", type=int, default=40, help="reply length used for extraction")
    ext.add_argument("--ship", action="store_true", help="write into models/<model>/vectors (maintainers)")

    val = sub.add_parser("validate", help="check persona / role-model / trait / policy YAML files")
    val.add_argument("files", nargs="+")
    return parser


def _validate(files: Sequence[str]) -> int:
    catalog = Catalog()
    problems = 0
    for f in files:
        for issue in validate_file(f, catalog):
            print(issue)
            problems += 1
    if problems:
        print(f"{problems} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} file(s) valid", file=sys.stderr)
    return 0


def _sampling_options(args: argparse.Namespace) -> dict:
    if args.max_tokens is not None and args.max_tokens < 1:
        raise PlaygroundError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise PlaygroundError(f"--temperature must be between 0 and 2, got {args.temperature}")
    return {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}


def parse_steer_args(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        trait, sep, value = item.partition("=")
        if not sep or not trait.strip():
            raise PlaygroundError(f"--steer {item!r}: expected TRAIT=STRENGTH, e.g. --steer humorous=0.8")
        try:
            out[trait.strip()] = float(value)
        except ValueError:
            raise PlaygroundError(f"--steer {item!r}: strength '{value}' is not a number") from None
    return out


def _chat(args: argparse.Namespace) -> int:
    from .session import Playground

    pg = Playground(args.model, backend=args.backend)
    options = _sampling_options(args)
    options["steering"] = parse_steer_args(args.steer) or None
    if args.json:
        if not args.message:
            raise PlaygroundError('--json needs a MESSAGE argument, e.g. chat --json "Hello"')
        result = pg.chat(args.persona, args.message, **options)
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    return _interactive(pg, args.persona, options, first=args.message)


HELP = "commands: /quit, /clear (new conversation), /undo (forget last turn), /persona NAME, /help"


def _interactive(pg, persona: str, options: dict, first: str | None = None) -> int:
    session = pg.session(persona)
    print(f"[{session.persona.name} on {pg.backend.model_id}; {HELP}]")
    if session.greeting:
        print(f"{session.persona.name}: {session.greeting}")
    pending = first
    while True:
        if pending is None:
            try:
                pending = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
        line, pending = pending.strip(), None
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return 0
        if line == "/help":
            print(HELP)
            continue
        if line == "/clear":
            session.clear()
            print("[conversation cleared]")
            continue
        if line == "/undo":
            print("[last turn removed]" if session.undo() else "[nothing to undo]")
            continue
        if line.startswith("/persona"):
            try:
                session = pg.session(line.split(maxsplit=1)[1] if " " in line else persona)
                print(f"[now talking to {session.persona.name}]")
                if session.greeting:
                    print(f"{session.persona.name}: {session.greeting}")
            except PlaygroundError as exc:
                print(f"[error] {exc}")
            continue
        print(f"{session.persona.name}: ", end="", flush=True)
        try:
            for event in session.stream(line, **options):
                if event.kind == "token":
                    print(event.text, end="", flush=True)
                elif event.result is not None:
                    print()
                    for notice in event.result.notices:
                        print(f"[notice] {notice}")
        except KeyboardInterrupt:
            print("\n[stopped]")


def _score(args: argparse.Namespace) -> int:
    from .session import Playground

    pg = Playground(args.model, backend=args.backend)
    print(json.dumps(pg.score(args.persona, args.message, args.reply).to_dict(), ensure_ascii=False))
    return 0


def _extract(args: argparse.Namespace) -> int:
    from .backends import load_backend
    from .extraction import extract_trait
    from .traits import load_trait
    from .vector_store import VectorStore

    traits = [load_trait(t) for t in args.trait]
    backend = load_backend(args.model, args.backend)
    store = VectorStore(backend.model_id)
    for trait in traits:
        vec = extract_trait(backend, trait, max_tokens=args.max_tokens, log=lambda m: print(m, file=sys.stderr))
        path = store.save(vec, shipped=args.ship)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "chat":
            return _chat(args)
        if args.command == "score":
            return _score(args)
        if args.command == "extract":
            return _extract(args)
    except ValidationError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
