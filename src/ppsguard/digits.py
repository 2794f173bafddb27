"""Numbers written in outside text (an option, a file, a kernel table, a log): whole numbers
in ASCII digits only, times and durations finite.

    decimal("8080") == 8080;  decimal("²") is None;  decimal("٣") is None;  decimal("") is None
    ranged(446, 0xFF, "protocol")  -> ValueError("protocol 446 is not in 0-255")
    finite("nan", "ts")            -> ValueError("ts: NaN or infinite")

`str.isdigit()` is true for "²", which `int()` refuses (a test with one and a parse with the
other was a crash); `int()` takes "٣" (Arabic-Indic three), which no port, pid or day count in a
file or option of ours is written with. One rule for every place: ASCII digits. `float()`
takes "nan" and "inf", which no time or duration is: a log that holds one made a flow "from
-inf to inf". Pure.
"""

from __future__ import annotations

import math


def decimal(text: str) -> int | None:
    """The value of `text` if it is one or more ASCII digits, else None."""
    return int(text) if text.isascii() and text.isdigit() else None


def ranged(value: int, top: int, what: str) -> int:
    """`value` if it is in 0..top (a port: 65535, a protocol number: 255); else a ValueError
    that names `what`, for the reader to report as its bad line or row."""
    if not 0 <= value <= top:
        raise ValueError(f"{what} {value} is not in 0-{top}")
    return value


def finite(value: object, what: str) -> float:
    """`value` (a text or a number) as a float if it is finite; else a ValueError that names
    `what`, for the reader to report as its bad line or row."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{what}: not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what}: NaN or infinite")
    return number
