"""What an import did with every field of a card: mapped, kept under ``extras``, empty, or noted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportReport:
    source: str  # the file name
    format: str  # e.g. "chara_card_v2 (PNG, 'chara' chunk)"
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (card field, persona field)
    extras: list[str] = field(default_factory=list)  # card fields kept under extras:
    empty: list[str] = field(default_factory=list)  # card fields with nothing in them
    notes: list[str] = field(default_factory=list)  # decisions the user should know about
    persona_id: str = ""
    written_to: str = ""

    def map(self, card_field: str, persona_field: str) -> None:
        self.mapped.append((card_field, persona_field))

    def keep(self, card_field: str) -> None:
        self.extras.append(card_field)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def lines(self) -> list[str]:
        """A human-readable account, one line each."""
        out = [f"{self.source}: {self.format}"]
        width = max((len(c) for c, _ in self.mapped), default=0)
        out += [f"  {c.ljust(width)} -> {p}" for c, p in self.mapped]
        if self.extras:
            out.append("  kept under extras (no home in the persona schema): " + ", ".join(self.extras))
        if self.empty:
            out.append("  empty in the card (nothing to keep): " + ", ".join(self.empty))
        out += [f"  note: {n}" for n in self.notes]
        if self.written_to:
            out.append(f"  wrote {self.written_to}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "persona_id": self.persona_id,
            "mapped": [{"card": c, "persona": p} for c, p in self.mapped],
            "extras": list(self.extras),
            "empty": list(self.empty),
            "notes": list(self.notes),
            "written_to": self.written_to,
        }

    def __str__(self) -> str:
        return "\n".join(self.lines())
