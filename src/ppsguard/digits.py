"""Whole numbers written in outside text (an option, a file, a kernel table): ASCII digits only.

    decimal("8080") == 8080;  decimal("²") is None;  decimal("٣") is None;  decimal("") is None
    ranged(446, 0xFF, "protocol")  -> ValueError("protocol 446 is not in 0-255")

`str.isdigit()` is true for "²", which `int()` refuses (a test with one and a parse with the
other was a crash); `int()` takes "٣" (Arabic-Indic three), which no port, pid or day count in a
file or option of ours is written with. One rule for every place: ASCII digits. Pure.
"""

from __future__ import annotations


def decimal(text: str) -> int | None:
    """The value of `text` if it is one or more ASCII digits, else None."""
    return int(text) if text.isascii() and text.isdigit() else None


def ranged(value: int, top: int, what: str) -> int:
    """`value` if it is in 0..top (a port: 65535, a protocol number: 255); else a ValueError
    that names `what`, for the reader to report as its bad line or row."""
    if not 0 <= value <= top:
        raise ValueError(f"{what} {value} is not in 0-{top}")
    return value
