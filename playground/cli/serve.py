"""``serve``: the web UI on one shared model (``launch.py`` is a shim that runs this command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import PlaygroundError
from .common import ENGINE_HELP, ENGINES, Subcommands, run


def register(sub: Subcommands) -> None:
    serve = sub.add_parser("serve", help="serve the web UI (chat, editor, compare, lab) on http://127.0.0.1:7860")
    add_serve_args(serve)
    serve.set_defaults(handler=serve_command)


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="a .gguf file, model directory or Hub repo id (default: embedded)"
    )
    parser.add_argument("--backend", "--engine", dest="backend", default="auto", choices=ENGINES, help=ENGINE_HELP)
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
    api = parser.add_argument_group("OpenAI-compatible API (under /v1 on the same port)")
    api.add_argument("--api", action="store_true", help="serve the API beside the web UI")
    api.add_argument("--api-only", action="store_true", help="serve the API alone, without the web UI")
    api.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on API requests")
    api.add_argument(
        "--api-queue", type=int, default=16, help="API requests that may wait for the model before 429 (default 16)"
    )


def _auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise PlaygroundError("--auth must look like user:password")
    return user, password


def serve_command(args: argparse.Namespace) -> int:
    auth = _auth(args.auth)
    if args.concurrency < 1:
        raise PlaygroundError("--concurrency must be at least 1")
    if args.api_queue < 0:
        raise PlaygroundError("--api-queue must be at least 0")
    from ..chat.session import Playground
    from ..definitions.personas import SHIPPED_PERSONAS, Catalog
    from ..ui.app import build_ui, launch_options  # Gradio: imported once the arguments are known to be good

    catalog = None
    if args.personas_dir:
        folder = Path(args.personas_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        catalog = Catalog([SHIPPED_PERSONAS, folder])  # later folders override, and the last one is written to
    pg = Playground(args.model, backend=args.backend, catalog=catalog)
    backend = pg.backend  # load now: fail fast with a clear message, and the first chat is quick
    print(f"model {backend.model_id} loaded ({backend.name}, {backend.n_layers} layers)", flush=True)
    if args.api_only:
        return _serve_api(pg, args, None, auth)
    demo = build_ui(pg, args.persona)
    # One model instance serves every tab: Playground.generation_lock lets one reply generate at a time (a
    # batching engine's whole batch at once), and the queue bounds how many requests wait for it.
    concurrency = max(args.concurrency, pg.generation_lock.capacity)
    demo.queue(default_concurrency_limit=concurrency, max_size=max(64, 2 * concurrency))
    if args.api:
        return _serve_api(pg, args, demo, auth)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        auth=auth,
        share=args.share,
        show_error=True,
        **launch_options(),
    )
    return 0


def api_app(
    pg: Any, demo: Any = None, *, api_key: str | None = None, api_queue: int = 16, auth: tuple[str, str] | None = None
) -> Any:
    """The API's FastAPI app, with the web UI ``demo`` (if given) mounted at / beside /v1."""
    from ..api.completions import Completions
    from ..api.fair_queue import FairQueue
    from ..api.server import build_api

    app = build_api(Completions(pg, FairQueue(api_queue, slots=lambda: pg.generation_lock.capacity)), api_key=api_key)
    if demo is None:
        return app
    import gradio as gr

    from ..ui.app import launch_options

    return gr.mount_gradio_app(app, demo, path="/", auth=auth, show_error=True, **launch_options())


def _serve_api(pg: Any, args: argparse.Namespace, demo: Any, auth: tuple[str, str] | None) -> int:
    """The API app (and the web UI mounted beside it at /), served by uvicorn on ``--host``/``--port``."""
    import uvicorn

    if args.share:
        raise PlaygroundError("--share cannot be combined with --api / --api-only (serve the API on your network)")
    app = api_app(pg, demo, api_key=args.api_key, api_queue=args.api_queue, auth=auth)
    where = f"http://{args.host}:{args.port}"
    print(f"API: {where}/v1 (models, chat/completions)" + ("" if demo is None else f"; web UI: {where}/"), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``launch.py``'s entry: the ``serve`` command's arguments, without the command word."""
    parser = argparse.ArgumentParser(prog="launch.py", description="Persona Playground web UI")
    add_serve_args(parser)
    return run(serve_command, parser.parse_args(argv))
