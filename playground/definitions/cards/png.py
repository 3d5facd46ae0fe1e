"""Just enough PNG to read and write character cards: walk the chunks, read and insert text chunks.

A card PNG is an ordinary image with the card JSON, base64-encoded, in a ``tEXt`` chunk whose keyword is
``chara`` (V2) or ``ccv3`` (V3). ``zTXt`` and ``iTXt`` chunks are read too; decompression is bounded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


class PngError(ValueError):
    """The bytes are not a well-formed PNG (the message says what is wrong)."""


@dataclass(frozen=True)
class TextChunk:
    keyword: str
    text: str
    chunk_type: str  # tEXt | zTXt | iTXt


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def iter_chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, payload, offset) for every chunk up to IEND; CRCs are checked."""
    if not is_png(data):
        raise PngError("not a PNG file (the PNG signature is missing)")
    chunks = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise PngError(f"file ends inside a chunk header at byte {pos} (truncated PNG?)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length + 4
        if end > len(data):
            raise PngError(
                f"chunk {ctype!r} at byte {pos} claims {length:,} bytes, past the end of the file (truncated PNG?)"
            )
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise PngError(f"chunk {ctype.decode('latin-1')!r} at byte {pos} is corrupted (CRC mismatch)")
        chunks.append((ctype, payload, pos))
        pos = end
        if ctype == b"IEND":
            return chunks


def _inflate(blob: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise PngError(f"{what}: compressed text is corrupted ({exc})") from None
    if len(out) > limit:
        raise PngError(f"{what}: text inflates to more than {limit:,} bytes")
    return out


def _parse_text(ctype: bytes, payload: bytes, limit: int) -> TextChunk:
    keyword, sep, rest = payload.partition(b"\0")
    name = keyword.decode("latin-1")
    what = f"{ctype.decode()} chunk '{name}'"
    if not sep:
        raise PngError(f"{what} has no keyword separator")
    if ctype == b"tEXt":
        return TextChunk(name, rest.decode("latin-1"), "tEXt")
    if ctype == b"zTXt":
        return TextChunk(name, _inflate(rest[1:], limit, what).decode("latin-1"), "zTXt")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text
    if len(rest) < 2:
        raise PngError(f"{what} is truncated")
    compressed = rest[0] == 1
    _, _, rest = rest[2:].partition(b"\0")
    _, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, limit, what)
    try:
        return TextChunk(name, text.decode("utf-8"), "iTXt")
    except UnicodeDecodeError:
        raise PngError(f"{what} is not valid UTF-8") from None


def text_keywords(data: bytes) -> list[str]:
    """The keywords of all text chunks, in file order."""
    return [p.partition(b"\0")[0].decode("latin-1") for t, p, _ in iter_chunks(data) if t in TEXT_TYPES]


def text_chunks(data: bytes, *, limit: int, keywords: tuple[str, ...] | None = None) -> list[TextChunk]:
    """Text chunks in file order (only those named in ``keywords``, compared case-insensitively, if given).

    ``limit`` bounds each returned chunk's (decompressed) text; other chunks are not decoded at all.
    """
    wanted = {k.lower() for k in keywords} if keywords is not None else None
    out = []
    for ctype, payload, _ in iter_chunks(data):
        if ctype not in TEXT_TYPES:
            continue
        keyword = payload.partition(b"\0")[0].decode("latin-1")
        if wanted is not None and keyword.lower() not in wanted:
            continue
        if len(payload) > limit:
            raise PngError(f"text chunk '{keyword}' is {len(payload):,} bytes; the limit is {limit:,}")
        out.append(_parse_text(ctype, payload, limit))
    return out


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def with_text_chunks(data: bytes, texts: dict[str, str], *, replace: tuple[str, ...] = ()) -> bytes:
    """The PNG with ``tEXt`` chunks added before the image data; existing text chunks named in ``replace`` go.

    Texts must be Latin-1 (card payloads are base64, i.e. ASCII).
    """
    drop = set(replace) | set(texts)
    parts = [PNG_SIGNATURE]
    pending = dict(texts)
    for ctype, payload, _ in iter_chunks(data):
        if ctype in TEXT_TYPES and payload.partition(b"\0")[0].decode("latin-1") in drop:
            continue
        if ctype in (b"IDAT", b"IEND") and pending:
            for keyword, text in pending.items():
                parts.append(_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1")))
            pending = {}
        parts.append(_chunk(ctype, payload))
    return b"".join(parts)
