"""Numbers in outside text are ASCII digits: the one rule (`ppsguard.digits`), and the options
and files that crashed on a "²" (str.isdigit() said yes, int() said no) before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.digits import decimal, ranged


def test_decimal_takes_ascii_digits_only() -> None:
    assert decimal("8080") == 8080
    assert decimal("007") == 7
    for text in ("", "²", "٣", "1²", "-1", "+1", " 1", "1.0", "0x10", "1_000"):
        assert decimal(text) is None, text


def test_ranged_names_what_is_out_of_range() -> None:
    assert ranged(0, 0xFFFF, "srcport") == 0 and ranged(0xFFFF, 0xFFFF, "srcport") == 0xFFFF
    for value in (-1, 0x10000):
        with pytest.raises(ValueError, match=f"srcport {value} is not in 0-65535"):
            ranged(value, 0xFFFF, "srcport")


@given(st.text(max_size=12))
def test_decimal_never_raises_and_agrees_with_int_on_ascii(text: str) -> None:
    value = decimal(text)
    if value is not None:
        assert text.isascii() and value == int(text)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["store", "prune", "--keep", "²d"], "not a duration"),
        (["flows", "collect", "--listen", "127.0.0.1:²"], "--listen takes ADDRESS:PORT"),
        (["serve", "--listen", "127.0.0.1:²"], "--listen needs HOST:PORT"),
        (["sockets", "--netns", "pid:²"], "no such network namespace"),
        (["diff", "²", "3"], "neither a file nor a recorded run id"),
    ],
)
def test_a_superscript_digit_is_a_usage_error_not_a_crash(
    tmp_path: Path, args: list[str], words: str
) -> None:
    store = ["--store", str(tmp_path / "s.db")] if args[0] in ("store", "diff") else []
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", *args, *store],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
