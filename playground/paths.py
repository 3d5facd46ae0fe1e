"""Where the repository's shipped folders are: personas, models (trait vectors), JSON schemas, docs.

The package sits at the top of its checkout (``<repo>/playground``), so the folders beside it are found from
this file's location; one place knows that, every other module asks here.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PERSONAS = REPO_ROOT / "personas"
SHIPPED_MODELS = REPO_ROOT / "models"
SCHEMA_DIR = REPO_ROOT / "schemas"
DOCS_DIR = REPO_ROOT / "docs"
