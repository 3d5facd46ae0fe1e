"""Atomic file writes: a reader sees the old file or the complete new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import PlaygroundError


def write_atomic(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    Without ``overwrite`` an existing file is never replaced (checked atomically where the filesystem
    supports hard links). Raises PlaygroundError when the file exists or cannot be written.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise PlaygroundError(f"{target} already exists; pass --force to overwrite it")
    if target.is_dir():
        raise PlaygroundError(f"{target} is a directory; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise PlaygroundError(f"cannot write {target}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the target appeared meanwhile
            except FileExistsError:
                raise PlaygroundError(f"{target} already exists; pass --force to overwrite it") from None
            except OSError:
                if target.exists():
                    raise PlaygroundError(f"{target} already exists; pass --force to overwrite it") from None
                os.replace(tmp, target)
    except OSError as exc:
        raise PlaygroundError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target
