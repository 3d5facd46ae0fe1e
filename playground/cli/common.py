"""What every command-line wing shares: the model arguments, sampling options, and how a wing registers itself.

A wing is a module with ``register(sub)``: it adds its sub-commands to the ``python -m playground`` parser and
sets each one's ``handler`` (``args -> exit status``) with ``set_defaults``; ``cli.main`` only composes wings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import PlaygroundError, ValidationError

Handler = Callable[[argparse.Namespace], int]


ENGINES = ["auto", "llama_cpp", "transformers", "vllm"]
ENGINE_HELP = (
    "the model runtime: llama_cpp (default for .gguf), transformers, or vllm (continuous batching for many chats "
    "at once; built by `make vllm`)"
)


class Subcommands(Protocol):
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="a .gguf file, a model directory or a Hub repo id (default: embedded SmolLM2-135M)",
    )
    p.add_argument("--backend", "--engine", dest="backend", default="auto", choices=ENGINES, help=ENGINE_HELP)


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--max-tokens/--temperature/--seed`` as ``Playground.chat`` keyword arguments, checked."""
    if args.max_tokens is not None and args.max_tokens < 1:
        raise PlaygroundError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise PlaygroundError(f"--temperature must be between 0 and 2, got {args.temperature}")
    return {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command's handler with the CLI's error contract (located issues, one-line errors)."""
    try:
        return handler(args)
    except ValidationError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
