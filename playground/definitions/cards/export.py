"""Export a persona as a SillyTavern V2 character card (JSON, or PNG with a ``chara`` chunk).

The persona's own prompt goes to the card's ``system_prompt`` (SillyTavern uses it as the main prompt);
fields a V2 card has no place for (the one-line description, role models, steering, guard, sampling and
extras that did not come from card fields) travel in ``extensions.persona_playground``, so importing the
card again gives the same persona.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

from ..personas import Persona, persona_to_data
from .examples import parse_mes_example, to_mes_example
from .lore import lorebook_to_character_book
from .mapping import EXTENSION_KEY
from .png import with_text_chunks

# Card fields that an import may have parked under extras: they go back to their own place on export.
V2_DATA_FIELDS = ("creator_notes", "creator", "character_version", "mes_example")


def persona_to_card(persona: Persona) -> dict[str, Any]:
    """A chara_card_v2 object for the persona."""
    data = persona_to_data(persona)
    extras = dict(data.get("extras") or {})
    card_extensions = extras.pop("extensions", {})
    if not isinstance(card_extensions, dict):
        extras["extensions"] = card_extensions
        card_extensions = {}
    parked = {k: extras.pop(k) for k in V2_DATA_FIELDS if k in extras and isinstance(extras[k], str)}
    ours: dict[str, Any] = {"version": 1, "description": persona.description}
    for key in ("role_models", "steering", "guard", "sampling"):
        if key in data:
            ours[key] = data[key]
    if extras:
        ours["extras"] = extras
    card: dict[str, Any] = {
        "name": persona.name,
        "description": "",
        "personality": "",
        "scenario": "",
        "first_mes": persona.greeting,
        "mes_example": to_mes_example([(e.user, e.assistant) for e in persona.examples]),
        "creator_notes": parked.pop("creator_notes", persona.description),
        "system_prompt": persona.system_prompt,
        "post_history_instructions": persona.post_history_instructions,
        "alternate_greetings": list(persona.alternate_greetings),
        "tags": list(persona.tags),
        "creator": parked.pop("creator", ""),
        "character_version": parked.pop("character_version", ""),
        "extensions": {**card_extensions, EXTENSION_KEY: ours},
    }
    original = parked.pop("mes_example", None)
    if original is not None:
        # The card's example text did not fully parse on import. If the examples are unchanged since,
        # export that original text (nothing lost); otherwise the edited examples win and the old text rides along.
        pairs = [(e["user"], e["assistant"]) for e in parse_mes_example(original, persona.name).examples]
        if pairs == [(e.user, e.assistant) for e in persona.examples]:
            card["mes_example"] = original
        else:
            ours.setdefault("extras", {})["mes_example"] = original
    if "lorebook" in data:
        card["character_book"] = lorebook_to_character_book(data["lorebook"])
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": card}


def card_json(persona: Persona) -> bytes:
    return (json.dumps(persona_to_card(persona), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def avatar_png(name: str, size: tuple[int, int] = (256, 384)) -> bytes:
    """A small portrait placeholder: a colour from the name and its initials."""
    from PIL import Image, ImageDraw, ImageFont

    digest = hashlib.sha256(name.encode("utf-8")).digest()
    background = tuple(60 + b % 150 for b in digest[:3])
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    initials = "".join(w[0] for w in name.split()[:2]).upper() or "?"
    try:
        font = ImageFont.load_default(size=size[0] // 3)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    draw.text((size[0] / 2, size[1] / 2), initials, fill=(255, 255, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def card_png(persona: Persona, image: bytes | None = None) -> bytes:
    """A PNG card: ``image`` (or a generated placeholder) with the card in a base64 ``chara`` tEXt chunk."""
    payload = base64.b64encode(json.dumps(persona_to_card(persona), ensure_ascii=False).encode("utf-8"))
    return with_text_chunks(image or avatar_png(persona.name), {"chara": payload.decode("ascii")}, replace=("ccv3",))
