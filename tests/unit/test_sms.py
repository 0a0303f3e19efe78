"""SMS segments: GSM-7 or UCS-2, single and concatenated limits, two-unit characters never split."""

from __future__ import annotations

import pytest

from shared.delivery.sms import GSM_BASIC, encoding, segments


def test_gsm_03_38_has_127_basic_characters_besides_the_escape() -> None:
    assert len(GSM_BASIC) == 127
    assert encoding("Zażółć") == "UCS-2"  # ż, ó and ł are not in GSM 03.38 (ó, ł, ż, ć)
    assert encoding("Café à Ørsted, 5€ [ok]") == "GSM-7"
    assert encoding("`backtick`") == "UCS-2"  # the grave accent is not in GSM-7


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        # extension characters take two septets
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 158 + "{", 1),
        ("a" * 159 + "{", 2),
        # an escape pair is never split: 152 + 2 does not fit in 153, so the brace opens segment two
        ("a" * 152 + "{" + "a" * 152, 3),
        ("a" * 151 + "{" + "a" * 153, 2),
        # UCS-2: 70 alone, 67 per segment
        ("ż" * 70, 1),
        ("ż" * 71, 2),
        ("ż" * 134, 2),
        ("ż" * 135, 3),
        # one character outside GSM-7 makes the whole text UCS-2
        ("a" * 69 + "ł", 1),
        ("a" * 70 + "ł", 2),
        # emoji are surrogate pairs (two code units), never split
        ("😀" * 35, 1),
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),
        ("a" * 65 + "😀" + "a" * 67, 2),
    ],
)
def test_segments(text: str, count: int) -> None:
    assert segments(text) == count
