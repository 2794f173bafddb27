"""Numbers in outside text are ASCII digits: the one rule (`ppsguard.digits`), and the options
and files that crashed on a "²" (str.isdigit() said yes, int() said no) before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.digits import decimal, finite, ranged


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


def test_finite_refuses_nan_infinities_and_what_is_not_a_number() -> None:
    assert finite("1.5", "ts") == 1.5 and finite(2, "ts") == 2.0 and finite(0.25, "ts") == 0.25
    for value in ("nan", "inf", "-Infinity", float("nan"), float("-inf"), "1e999"):
        with pytest.raises(ValueError, match=r"^ts: NaN or infinite$"):
            finite(value, "ts")
    for value in (True, None, [1]):
        with pytest.raises(ValueError, match=r"^ts: not a number"):
            finite(value, "ts")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "conn.log",
            "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p"
            "\tproto\tduration\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\n"
            "nan\tCa\t198.18.0.5\t1000\t198.18.0.2\t22\ttcp\t1.0\n",
            "conn.log:4: not a Zeek conn.log line: ts: NaN or infinite",
        ),
        (
            "vpc.log",
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
            "bytes start end action log-status\n"
            "2 123456789012 eni-1 198.18.0.5 198.18.0.2 1000 22 6 5 300 1 inf ACCEPT OK\n",
            "vpc.log:2: not a VPC flow log line: end: NaN or infinite",
        ),
    ],
)
def test_logs_with_a_time_that_is_not_finite_are_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    """float() read "nan" and "inf": `pps flows read` wrote the time as null, and the audit
    made a scan "from -inf to inf"."""
    path = tmp_path / name
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "read", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


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
