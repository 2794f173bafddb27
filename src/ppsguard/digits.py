"""Whole numbers written in outside text (an option, a file, a kernel table): ASCII digits only.

    decimal("8080") == 8080;  decimal("²") is None;  decimal("٣") is None;  decimal("") is None

`str.isdigit()` is true for "²", which `int()` refuses (a test with one and a parse with the
other was a crash); `int()` takes "٣" (Arabic-Indic three), which no port, pid or day count in a
file or option of ours is written with. One rule for every place: ASCII digits. Pure.
"""

from __future__ import annotations


def decimal(text: str) -> int | None:
    """The value of `text` if it is one or more ASCII digits, else None."""
    return int(text) if text.isascii() and text.isdigit() else None
