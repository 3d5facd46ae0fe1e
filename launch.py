"""Serve the Persona Playground UI: ``python launch.py [--model M] [--persona P] [--host H] [--port N]``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Persona Playground web UI")
    parser.add_argument(
        "--model", default=None, help="a .gguf file, model directory or Hub repo id (default: embedded)"
    )
    parser.add_argument("--backend", default="auto", choices=["auto", "llama_cpp", "transformers"])
    parser.add_argument("--persona", default="assistant", help="persona selected when the page opens")
    parser.add_argument(
        "--personas-dir",
        default=None,
        help="a folder of your own personas; the editor saves there (default: the shipped personas/ folder)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--auth", default=None, help="require a login, as user:password")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="how many requests of each kind the queue runs at once"
    )
    args = parser.parse_args(argv)

    from pathlib import Path

    from playground.chat.session import Playground
    from playground.definitions.personas import SHIPPED_PERSONAS, Catalog
    from playground.errors import PlaygroundError
    from playground.ui.app import build_ui, launch_options

    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            parser.error("--auth must look like user:password")
        auth = (user, password)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    catalog = None
    if args.personas_dir:
        folder = Path(args.personas_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        catalog = Catalog([SHIPPED_PERSONAS, folder])  # later folders override, and the last one is written to
    pg = Playground(args.model, backend=args.backend, catalog=catalog)
    try:
        backend = pg.backend  # load now: fail fast with a clear message, and the first chat is quick
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model {backend.model_id} loaded ({backend.name}, {backend.n_layers} layers)", flush=True)
    demo = build_ui(pg, args.persona)
    # One model instance serves every tab: Playground.generation_lock lets one reply generate at a time, and
    # the queue bounds how many requests wait for it.
    demo.queue(default_concurrency_limit=args.concurrency, max_size=64)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        auth=auth,
        share=args.share,
        show_error=True,
        **launch_options(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
