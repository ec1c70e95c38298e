"""`clean_name`: every name a channel hands the core is one line, free of controls, with bidi contained."""

from __future__ import annotations

import pytest

from channels.base import Identity, IdentityKind, clean_name

RLO, LRO, PDF, RLI, PDI = "\u202e", "\u202d", "\u202c", "\u2067", "\u2069"

# given → expected
CASES: list[tuple[str, str]] = [
    ("Ann Lee", "Ann Lee"),
    ("Ann\r\nBcc: x@evil.test", "Ann Bcc: x@evil.test"),
    ("Ann\x00Lee", "AnnLee"),
    ("Ann\x1b[31mLee", "Ann[31mLee"),
    ("Ann\x7f\x85\x9bLee", "Ann Lee"),  # DEL and C1 controls; NEL is a line break
    ("Ann\tLee\v\f", "Ann Lee"),
    ("Ann\u2028Lee\u2029", "Ann Lee"),
    ("  Ann   Lee  ", "Ann Lee"),
    ("Иван Петров", "Иван Петров"),
    ("山田 太郎", "山田 太郎"),
    ("ZWJ 👩\u200d💻", "ZWJ 👩\u200d💻"),
    # bidi controls are kept, but whatever the name opens is closed at its end
    (f"Ann {RLO}gpj.exe", f"Ann {RLO}gpj.exe{PDF}"),
    (f"Ann {RLO}a{PDF} b", f"Ann {RLO}a{PDF} b"),
    (f"{RLI}x{RLO}y", f"{RLI}x{RLO}y{PDF}{PDI}"),
    (f"{RLI}x{RLO}y{PDI}z", f"{RLI}x{RLO}y{PDF}{PDI}z"),
    (f"a{PDF}{PDI}b", "ab"),  # stray closers would end an embedding outside the name
    (f"{LRO}{RLO}x", f"{LRO}{RLO}x{PDF}{PDF}"),
    ("", ""),
    ("\r\n\x00", ""),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_clean_name(given: str, expected: str) -> None:
    assert clean_name(given) == expected


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_every_identity_name_is_clean(given: str, expected: str) -> None:
    for kind in IdentityKind:
        assert Identity(kind, "v", name=given).name == expected


def test_no_control_character_survives() -> None:
    every = "".join(chr(code) for code in [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029])
    cleaned = clean_name(f"a{every}b")
    assert cleaned == "a b"
