"""How many SMS segments a text takes: GSM-7 when every character is in GSM 03.38, else UCS-2.

GSM-7: 160 septets alone, 153 per segment when split (the rest is the concatenation header); the
extension characters ``^ { } \\ [ ~ ] | €`` and the form feed take two (an escape and the character), and
an escape pair is never split across segments. UCS-2: 70 UTF-16 code units alone, 67 per segment when
split; a character outside the Basic Multilingual Plane (most emoji) is a surrogate pair, two units that
are never split. Pure.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: GSM 03.38's basic character set (the escape to the extension table, 0x1B, is not a character)
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: its extension table: each takes two septets
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_PART = {"GSM-7": 153, "UCS-2": 67}


def encoding(text: str) -> Encoding:
    """GSM-7 if every character is in GSM 03.38 (basic or extension), else UCS-2."""
    return "GSM-7" if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text) else "UCS-2"


def _units(text: str, coding: Encoding) -> list[int]:
    """Each character's size: septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if coding == "GSM-7":
        return [2 if c in GSM_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segments(text: str) -> int:
    """The number of SMS segments the text is sent in (0 for an empty text)."""
    coding = encoding(text)
    units = _units(text, coding)
    if sum(units) <= SINGLE[coding]:
        return 1 if units else 0
    count, used = 1, 0
    for size in units:
        if used + size > PER_PART[coding]:
            count, used = count + 1, 0
        used += size
    return count
