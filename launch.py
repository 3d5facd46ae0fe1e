"""Serve the Persona Playground UI: ``python launch.py [--model M] [--persona P] [--host H] [--port N]``.

A shim kept at the top level: the same as ``python -m playground serve`` (see ``playground/cli/serve.py``).
"""

from __future__ import annotations

import sys

from playground.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
