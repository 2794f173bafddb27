"""The /proc/net parser and the small /proc text parsers (pure, text in, values out)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.inventory.procfs import (
    decode_endpoint,
    parse_cgroup,
    parse_ns_link,
    parse_proc_net,
    parse_socket_link,
    unit_of,
)
from ppsguard.model.net import Protocol

TCP_SAMPLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1589 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A3F0 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 91740 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:A3F1 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
"""  # noqa: E501 -- verbatim /proc rows
TCP6_SAMPLE = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91739 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:A7F8 01 00000000:00000000 00:00000000 00000000     0        0 91741 1 0000000000000000 20 4 31 10 -1
   2: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 777 1 0000000000000000 100 0 0 10 0
"""  # noqa: E501 -- verbatim /proc rows


def test_tcp_rows() -> None:
    rows = list(parse_proc_net(TCP_SAMPLE, Protocol.TCP, byteorder="little"))
    assert [(str(r.local_address), r.local_port, r.state, r.uid, r.inode) for r in rows] == [
        ("0.0.0.0", 22, 10, 0, 1589),
        ("127.0.0.1", 41968, 1, 1000, 91740),
        ("127.0.0.1", 8080, 6, 0, 0),
    ]
    assert (str(rows[1].remote_address), rows[1].remote_port) == ("127.0.0.1", 8080)


def test_tcp6_rows() -> None:
    rows = list(parse_proc_net(TCP6_SAMPLE, Protocol.TCP, byteorder="little"))
    assert [str(r.local_address) for r in rows] == ["::", "::ffff:7f00:1", "::1"]
    assert rows[1].remote_port == 0xA7F8
    assert rows[2].uid == 101


@pytest.mark.parametrize(
    "line",
    [
        "   0: 0000000:0016 00000000:0000 0A 0 0 0 0 0 1",
        "   0: 00000000:0016 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 0 0 12",
        "   0: 00000000:0016",
        "garbage",
        "   0: 0000000G:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12",
    ],
)
def test_malformed_rows_name_the_line(line: str) -> None:
    with pytest.raises(InputError) as caught:
        list(
            parse_proc_net(
                "  sl local_address\n" + line + "\n", Protocol.TCP, source="/proc/net/tcp"
            )
        )
    assert ":2" in str(caught.value)


@given(
    address=st.ip_addresses(),
    port=st.integers(min_value=0, max_value=65535),
    byteorder=st.sampled_from(["little", "big"]),
)
def test_decode_endpoint_round_trip(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, byteorder: str
) -> None:
    # The kernel prints each 32-bit network-order word as the host reads it: %08X.
    packed = address.packed
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    text = "".join(f"{int.from_bytes(w, byteorder):08X}" for w in words)  # type: ignore[arg-type]
    assert decode_endpoint(f"{text}:{port:04X}", byteorder=byteorder) == (address, port)


@given(st.text(max_size=200))
def test_parser_never_crashes_on_junk(text: str) -> None:
    with contextlib.suppress(InputError):
        assert isinstance(list(parse_proc_net(text, Protocol.UDP)), list)


@pytest.mark.parametrize(
    ("text", "cgroup", "unit"),
    [
        ("0::/system.slice/ssh.service\n", "/system.slice/ssh.service", "ssh.service"),
        (
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service",
            "foo.service",
        ),
        (
            "0::/system.slice/docker-abc.scope\n",
            "/system.slice/docker-abc.scope",
            "docker-abc.scope",
        ),
        ("0::/\n", "/", None),
        (
            "12:cpu:/x\n1:name=systemd:/system.slice/cron.service\n",
            "/system.slice/cron.service",
            "cron.service",
        ),
        ("", None, None),
    ],
)
def test_cgroup_and_unit(text: str, cgroup: str | None, unit: str | None) -> None:
    assert parse_cgroup(text) == cgroup
    assert unit_of(cgroup) == unit


@pytest.mark.parametrize(
    ("text", "inode"),
    [("net:[4026531840]", 4026531840), ("mnt:[1]", None), ("net:[x]", None), ("", None)],
)
def test_ns_link(text: str, inode: int | None) -> None:
    assert parse_ns_link(text) == inode


@pytest.mark.parametrize(
    ("text", "inode"),
    [("socket:[12345]", 12345), ("pipe:[1]", None), ("/dev/null", None), ("socket:[]", None)],
)
def test_socket_link(text: str, inode: int | None) -> None:
    assert parse_socket_link(text) == inode


@pytest.mark.parametrize("module", ["procfs", "raw"])
def test_parsers_are_pure(module: str) -> None:
    import ast
    from pathlib import Path

    import ppsguard.inventory

    path = Path(ppsguard.inventory.__file__).parent / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"socket", "subprocess", "asyncio", "os"}
