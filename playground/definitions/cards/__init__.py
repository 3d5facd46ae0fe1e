"""Character cards: import SillyTavern/TavernAI cards (V1, V2, V3; JSON or PNG) and text-generation-webui
characters as personas, and export personas as V2 cards. See docs/CARDS.md for what maps where."""

from .decode import MAX_CARD_BYTES, RawCard, read_card_bytes
from .export import card_json, card_png, persona_to_card
from .importer import ImportResult, import_card_bytes, import_card_file, import_upload
from .mapping import card_to_persona_data
from .report import ImportReport

__all__ = [
    "MAX_CARD_BYTES",
    "ImportReport",
    "ImportResult",
    "RawCard",
    "card_json",
    "card_png",
    "card_to_persona_data",
    "import_card_bytes",
    "import_card_file",
    "import_upload",
    "persona_to_card",
    "read_card_bytes",
]
