"""A Hugging Face tokenizer seen the way every backend sees tokens: ids of a text, raw bytes of one token (as
llama.cpp gives them: control tokens have none), end-of-turn ids, and the model's chat template.

Shared by the transformers backend and the vLLM engine (which tokenizes in the playground's process and sends
token ids to its worker).
"""

from __future__ import annotations

import re
from typing import Any

from ..prompt.chat_template import ChatTemplate

_END_PIECES = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|end|>", "<eos>")
_HEX_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in character of each byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


_BYTE_DECODER = _byte_decoder()


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in value} if isinstance(value, (list, tuple, set)) else {int(value)}


class HfTokens:
    """Token ids and bytes of a transformers tokenizer; ``config``/``generation`` give the end-of-turn ids."""

    def __init__(self, tokenizer: Any, generation: Any, config: Any) -> None:
        tok = self.tokenizer = tokenizer
        self.template = ChatTemplate(
            getattr(tok, "chat_template", None), bos_token=tok.bos_token or "", eos_token=tok.eos_token or ""
        )
        added = getattr(tok, "added_tokens_decoder", {})
        self._special_ids = {int(i) for i, t in added.items() if getattr(t, "special", False)}
        self._special_ids |= set(tok.all_special_ids)
        self._added_ids = {int(i) for i in added}
        decoder = getattr(getattr(tok, "backend_tokenizer", None), "decoder", None)
        self._byte_level = "ByteLevel" in repr(decoder)
        self._bytes: dict[int, bytes] = {}
        vocab = tok.get_vocab()
        ends = _ids(getattr(generation, "eos_token_id", None)) | _ids(getattr(config, "eos_token_id", None))
        ends |= _ids(tok.eos_token_id) | {vocab[p] for p in _END_PIECES if p in vocab}
        self.end_ids = sorted(ends)
        self._end_set = frozenset(ends)

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_bytes(self, token: int) -> bytes:
        cached = self._bytes.get(token)
        if cached is None:
            cached = self._bytes[token] = self._piece_bytes(token)
        return cached

    def _piece_bytes(self, token: int) -> bytes:
        if token in self._special_ids:
            return b""  # like llama.cpp: control tokens have no text
        piece = self.tokenizer.convert_ids_to_tokens(token)
        if not isinstance(piece, str):
            return b""
        if token in self._added_ids:
            return piece.encode("utf-8")
        if self._byte_level and all(c in _BYTE_DECODER for c in piece):
            return bytes(_BYTE_DECODER[c] for c in piece)
        if match := _HEX_BYTE.fullmatch(piece):  # SentencePiece byte fallback
            return bytes([int(match.group(1), 16)])
        if not self._byte_level:
            return piece.replace("\u2581", " ").encode("utf-8")
        return self.tokenizer.decode([token]).encode("utf-8")

    def is_end(self, token: int) -> bool:
        return token in self._end_set


class HfTokenMethods:
    """The backend protocol's token methods for a backend that holds an ``HfTokens`` as ``self.tokens``."""

    tokens: HfTokens

    def tokenize(self, text: str) -> list[int]:
        return self.tokens.tokenize(text)

    def token_bytes(self, token: int) -> bytes:
        return self.tokens.token_bytes(token)

    def is_end(self, token: int) -> bool:
        return self.tokens.is_end(token)
