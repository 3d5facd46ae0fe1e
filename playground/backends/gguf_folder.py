"""A GGUF file on the transformers backend: de-quantised once into a transformers folder in the user cache.

transformers reads a GGUF's metadata with gguf-py, element by element: for a model with a large vocabulary
(Gemma 3: 262k tokens) one read takes about 15 s on 2 cores, and loading the config, the tokenizer and the
weights reads the file three times (about 50 s for Gemma-3 270M). Here the file is read once (the reader is
shared by the three loads), and the result is saved as a float32 transformers folder keyed by the file's
size and a hash of its head and tail; every later load reads that folder in a few seconds.

Nothing is written unless the conversion finished: the folder is built under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ModelError
from ..paths import user_cache_dir

_SAMPLE = 1 << 20  # bytes hashed from each end of the file
FOLDER_MARK = "converted_from.txt"


def file_key(path: Path) -> str:
    """A short key that changes when the file does: its size and a hash of its first and last MiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_SAMPLE))
        handle.seek(max(0, size - _SAMPLE))
        digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()[:12]


def converted_folder(gguf: Path) -> Path:
    """Where the transformers copy of ``gguf`` lives (it may not exist yet)."""
    return user_cache_dir() / "converted" / f"{gguf.stem}-{file_key(gguf)}"


@contextlib.contextmanager
def _one_reader() -> Iterator[None]:
    """While open, ``gguf.GGUFReader(path)`` returns one shared reader per path (transformers imports it by name
    at call time, so this covers its config, tokenizer and weight loads)."""
    import gguf

    original = gguf.GGUFReader
    readers: dict[str, object] = {}

    def shared(path: str | os.PathLike[str], *args: object, **kwargs: object) -> object:
        key = str(Path(path).resolve())
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _convert(gguf: Path, into: Path, load: Callable[[str, dict[str, str]], tuple[object, object]]) -> None:
    with _one_reader():
        tokenizer, model = load(str(gguf.parent), {"gguf_file": gguf.name})
    # The weights are plain float32 tensors now; transformers still marks the model as GGUF-quantised (which
    # it refuses to save), so the mark goes before saving and the saved folder loads as an ordinary model.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None  # type: ignore[attr-defined]
    config = model.config  # type: ignore[attr-defined]
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model.save_pretrained(into)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(into)  # type: ignore[attr-defined]
    (into / FOLDER_MARK).write_text(f"{gguf}\n", encoding="utf-8")


def ensure_converted(
    gguf: Path,
    load: Callable[[str, dict[str, str]], tuple[object, object]],
    log: Callable[[str], None] = print,
) -> Path:
    """The transformers folder for ``gguf``, converting it first if the cache has none.

    ``load(where, extra)`` loads (tokenizer, model) from a folder with extra ``from_pretrained`` arguments.
    """
    folder = converted_folder(gguf)
    if (folder / FOLDER_MARK).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    log(f"de-quantising {gguf.name} for transformers, once (saved to {folder}) ...")
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    work.chmod(0o755)
    try:
        _convert(gguf, work, load)
        if folder.exists():  # another process finished first: keep theirs
            shutil.rmtree(work)
        else:
            os.replace(work, folder)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelError(f"{gguf}: could not save its transformers copy to {folder}: {exc}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
    log(f"saved {folder} ({size:.2f} GB); later loads read it directly")
    return folder
