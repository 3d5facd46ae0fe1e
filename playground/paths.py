"""Where the repository's shipped folders are: personas, models (trait vectors), JSON schemas, docs.

The package sits at the top of its checkout (``<repo>/playground``), so the folders beside it are found from
this file's location; one place knows that, every other module asks here.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PERSONAS = REPO_ROOT / "personas"
SHIPPED_MODELS = REPO_ROOT / "models"
SCHEMA_DIR = REPO_ROOT / "schemas"
DOCS_DIR = REPO_ROOT / "docs"


def user_cache_dir() -> Path:
    """The user's own data (extracted vectors, screens, converted models): ``PLAYGROUND_CACHE`` or the XDG cache."""
    base = os.environ.get("PLAYGROUND_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "persona-playground"
    )
    return Path(base)


def model_dirs(model_id: str, part: str) -> list[Path]:
    """Where one part of a model's files (``guard``, ``space``, ...) is looked for, in priority order: the user's
    cache (what ``prepare`` and the other commands write), then the checkout's ``models/`` (shipped)."""
    return [user_cache_dir() / model_id / part, SHIPPED_MODELS / model_id / part]
