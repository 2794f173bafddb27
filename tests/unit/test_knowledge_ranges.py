"""IANA range classes, the ephemeral-range parser and the host's ephemeral range."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.knowledge.ranges import (
    LINUX_DEFAULT_EPHEMERAL,
    host_ephemeral_range,
    is_ephemeral,
    parse_local_port_range,
    range_bounds,
    range_class,
)
from ppsguard.model.net import PortRange, RangeClass


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (0, RangeClass.SYSTEM),
        (22, RangeClass.SYSTEM),
        (1023, RangeClass.SYSTEM),
        (1024, RangeClass.REGISTERED),
        (3306, RangeClass.REGISTERED),
        (49151, RangeClass.REGISTERED),
        (49152, RangeClass.DYNAMIC),
        (50000, RangeClass.DYNAMIC),
        (65535, RangeClass.DYNAMIC),
    ],
)
def test_range_class_boundaries(port: int, expected: RangeClass) -> None:
    assert range_class(port) is expected
    assert port in range_bounds(expected)


@pytest.mark.parametrize("port", [-1, 65536, 100000])
def test_range_class_rejects_out_of_range(port: int) -> None:
    with pytest.raises(InputError, match="out of range"):
        range_class(port)


def test_range_bounds_cover_all_ports_without_overlap() -> None:
    bounds = [range_bounds(cls) for cls in RangeClass]
    assert sum(len(b) for b in bounds) == 65536
    assert [str(b) for b in bounds] == ["0-1023", "1024-49151", "49152-65535"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32768\t60999\n", PortRange(32768, 60999)),
        ("1024 65535", PortRange(1024, 65535)),
        ("  49152\t\t65535  \n", PortRange(49152, 65535)),
        ("5000\t5000\n", PortRange(5000, 5000)),
    ],
)
def test_parse_local_port_range_known(text: str, expected: PortRange) -> None:
    assert parse_local_port_range(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "\n", "32768", "32768 60999 1", "a b", "60999 32768", "1 70000", "-1 5", "0x10 20"],
)
def test_parse_local_port_range_rejects_garbage(text: str) -> None:
    with pytest.raises(InputError):
        parse_local_port_range(text)


@given(
    first=st.integers(0, 65535),
    last=st.integers(0, 65535),
    sep=st.sampled_from(["\t", " ", "  ", "\t "]),
    end=st.sampled_from(["", "\n", " \n"]),
)
def test_parse_local_port_range_roundtrip(first: int, last: int, sep: str, end: str) -> None:
    text = f"{first}{sep}{last}{end}"
    if first <= last:
        assert parse_local_port_range(text) == PortRange(first, last)
    else:
        with pytest.raises(InputError):
            parse_local_port_range(text)


@given(st.text(max_size=50))
def test_parse_local_port_range_never_crashes(text: str) -> None:
    try:
        result = parse_local_port_range(text)
    except InputError:
        return
    assert 0 <= result.first <= result.last <= 65535


def test_host_ephemeral_range_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text("40000\t45000\n")
    assert host_ephemeral_range(path) == PortRange(40000, 45000)


def test_host_ephemeral_range_falls_back(tmp_path: Path) -> None:
    assert host_ephemeral_range(tmp_path / "missing") == LINUX_DEFAULT_EPHEMERAL
    garbage = tmp_path / "garbage"
    garbage.write_text("not numbers\n")
    assert host_ephemeral_range(garbage) == LINUX_DEFAULT_EPHEMERAL


def test_host_ephemeral_range_on_this_machine_is_valid() -> None:
    window = host_ephemeral_range()
    assert 0 <= window.first <= window.last <= 65535


@pytest.mark.parametrize(
    ("port", "expected"),
    [(32767, False), (32768, True), (50000, True), (60999, True), (61000, False), (22, False)],
)
def test_is_ephemeral_with_linux_default(port: int, expected: bool) -> None:
    assert is_ephemeral(port, LINUX_DEFAULT_EPHEMERAL) is expected


def test_is_ephemeral_uses_host_range_by_default() -> None:
    window = host_ephemeral_range()
    assert is_ephemeral(window.first) and is_ephemeral(window.last)
    if window.first > 0:
        assert not is_ephemeral(window.first - 1)
