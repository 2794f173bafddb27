"""Timing, packets, output writers and the command's error paths."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from ppsguard.cli.app import app, main
from ppsguard.model.net import Protocol
from ppsguard.model.scan import (
    Confidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
)
from ppsguard.report.grepable import render_grepable
from ppsguard.report.nmapxml import render_xml
from ppsguard.scan.engines.packets import (
    CookieJar,
    SynBuilder,
    checksum_fold,
    parse_icmp4,
    parse_tcp,
    words,
)
from ppsguard.scan.observer import Eta
from ppsguard.scan.timing import PRESETS, CongestionWindow, RttEstimator
from ppsguard.scan.udp_payloads import PAYLOADS, payload_for


def test_rtt_estimator_clamps() -> None:
    est = RttEstimator(PRESETS[4])
    assert est.timeout == PRESETS[4].initial_timeout
    for _ in range(20):
        est.sample(0.0001)
    assert est.timeout == PRESETS[4].min_timeout
    for _ in range(50):
        est.sample(30.0)
    assert est.timeout == PRESETS[4].max_timeout


def test_congestion_window() -> None:
    cw = CongestionWindow(100, initial=64, minimum=4)
    cw.on_loss()
    assert cw.allowed == 32
    for _ in range(200):
        cw.on_answer()
    assert cw.allowed == 100
    for _ in range(20):
        cw.on_loss()
    assert cw.allowed == 4


def test_eta_never_negative() -> None:
    eta = Eta()
    assert eta.update(0.0, 0, 100) is None
    assert eta.update(1.0, 50, 100) == pytest.approx(1.0)
    assert eta.update(2.0, 100, 100) == 0.0
    assert eta.update(3.0, 120, 100) == 0.0


@pytest.mark.parametrize(
    ("src", "dst"), [("198.18.0.1", "198.18.0.2"), ("2001:db8::1", "2001:db8::2")]
)
def test_syn_segment_checksum_and_cookie(src: str, dst: str) -> None:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    builder = SynBuilder(b"k" * 16, s, d.version, 45000)
    seg = builder.segment(d, 443)
    if d.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 6, len(seg))
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", len(seg), 6)
    assert checksum_fold(words(pseudo + seg)) == 0  # a valid checksum sums to 0xFFFF
    sport, dport, seq = struct.unpack_from("!HHI", seg)
    assert (sport, dport, seq) == (45000, 443, builder.cookie(d, 443))
    # a SYN-ACK answering it matches; a forged ack does not
    synack = struct.pack("!HHIIBBHHH", 443, 45000, 1, (seq + 1) & 0xFFFFFFFF, 0x50, 0x12, 1, 0, 0)
    reply = parse_tcp(d, synack, builder, 64)
    assert reply is not None and reply.cookie_ok and reply.state is PortState.OPEN
    forged = struct.pack("!HHIIBBHHH", 443, 45000, 1, seq, 0x50, 0x12, 1, 0, 0)
    bad = parse_tcp(d, forged, builder, 64)
    assert bad is not None and not bad.cookie_ok


def test_cookie_is_keyed() -> None:
    packed = ipaddress.ip_address("198.18.0.2").packed
    assert CookieJar(b"a" * 16).cookie(packed, 80) != CookieJar(b"b" * 16).cookie(packed, 80)


def test_icmp_admin_prohibited_is_matched() -> None:
    s, d = ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")
    builder = SynBuilder(b"k" * 16, s, 4, 45000)
    seg = builder.segment(d, 3000)
    inner = (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0, 0, 64, 6, 0, s.packed, d.packed)
        + seg[:8]
    )
    icmp = bytes([3, 13, 0, 0, 0, 0, 0, 0]) + inner
    outer = (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 63, 1, 0, d.packed, s.packed)
        + icmp
    )
    reply = parse_icmp4(outer, builder)
    assert reply is not None and reply.cookie_ok
    assert (reply.port, reply.state, reply.reason) == (
        3000,
        PortState.FILTERED,
        Reason.ADMIN_PROHIBITED,
    )


def test_udp_payloads_present() -> None:
    assert {53, 123, 161, 137, 1900, 5353, 500, 11211} <= set(PAYLOADS)
    assert payload_for(123)[0] == 0x1B and len(payload_for(123)) == 48
    assert payload_for(40000) == b""


def _result() -> ScanResult:
    host = HostResult(
        ipaddress.ip_address("198.18.0.2"),
        "lab<&>",
        HostState.UP,
        (
            PortResult(
                22,
                Protocol.TCP,
                PortState.OPEN,
                Reason.SYN_ACK,
                ServiceInfo("ssh", "OpenSSH", "9.2", confidence=Confidence.MATCHED),
            ),
            PortResult(80, Protocol.TCP, PortState.OPEN, Reason.SYN_ACK, ServiceInfo("http")),
        ),
        {"open": 2, "closed": 998, "filtered": 10},
    )
    down = HostResult(ipaddress.ip_address("2001:db8::9"), None, HostState.DOWN)
    stats = ScanStats(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1.5, 1010, 3, 42)
    return ScanResult((host, down), stats, engine="syn", arguments="pps scan -p 1-1010 198.18.0.2")


def test_nmap_xml_structure() -> None:
    root = ET.fromstring(render_xml(_result()).split("\n", 2)[2])
    assert root.tag == "nmaprun"
    hosts = root.findall("host")
    assert hosts[0].find("address").get("addr") == "198.18.0.2"  # type: ignore[union-attr]
    ports = hosts[0].findall("ports/port")
    assert [p.get("portid") for p in ports] == ["22", "80"]
    assert ports[0].find("service").get("product") == "OpenSSH"  # type: ignore[union-attr]
    extra = {e.get("state"): e.get("count") for e in hosts[0].findall("ports/extraports")}
    assert extra == {"closed": "998", "filtered": "10"}
    assert hosts[1].find("status").get("state") == "down"  # type: ignore[union-attr]
    assert root.find("runstats/hosts").get("up") == "1"  # type: ignore[union-attr]


def test_grepable() -> None:
    text = render_grepable(_result())
    assert (
        "Host: 198.18.0.2 (lab<&>)\tPorts: 22/open/tcp//ssh//OpenSSH 9.2/, 80/open/tcp//http///"
        in text
    )
    assert "Ignored State: closed (998)" in text
    assert "Host: 2001:db8::9 ()\tStatus: Down" in text


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "token"),
    [
        (["scan", "-p", "80", "198.18.0.300"], "198.18.0.300"),
        (["scan", "-p", "70000", "127.0.0.1"], "70000"),
        (["scan", "-p", "22,http", "127.0.0.1"], "http"),
        (["scan", "--exclude", "nonsense!", "127.0.0.1"], "nonsense!"),
    ],
)
def test_bad_input_exits_2_naming_the_token(
    args: list[str], token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert token in err
    assert len(err.strip().splitlines()) == 1


def test_scope_refuses_targets_outside(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    scope = Path(str(tmp_path)) / "scope.txt"
    scope.write_text("198.18.0.0/24\n")
    assert main(["scan", "--connect", "--scope", str(scope), "-p", "80", "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert "scope" in err and "127.0.0.1" in err
    scope.write_text("198.18.0.0/24\nnot-a-net!\n")
    assert main(["scan", "--connect", "--scope", str(scope), "-p", "80", "198.18.0.1"]) == 2
    assert "not-a-net!" in capsys.readouterr().err
    scope.write_text("198.18.0.0/24\n")
    dry = runner.invoke(
        app, ["scan", "--connect", "--scope", str(scope), "--dry-run", "-p", "1-10", "198.18.0.1-4"]
    )
    assert dry.exit_code == 0
    assert "40 probes" in dry.output


def test_loopback_connect_scan_json(tmp_path: object) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = runner.invoke(
            app, ["scan", "--connect", "--json", "-p", f"{port},{port + 1}", "127.0.0.1"]
        )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (host,) = doc["hosts"]
    assert [p["port"] for p in host["ports"]] == [port]
    assert host["summary"]["open"] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop CAP_NET_RAW")
def test_syn_without_raw_socket_privilege_exits_3_suggesting_connect() -> None:
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw", sys.executable, "-m", "ppsguard", "scan", "--syn",
         "-p", "80", "127.0.0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "--connect" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_deadlines_cut_a_scan_short_and_flag_the_host() -> None:
    import asyncio

    from ppsguard.scan import ScanOptions, scan

    opts = ScanOptions(engine="connect", host_timeout=0.05, confirm=False)
    result = asyncio.run(scan(["127.0.0.1"], "-", options=opts))
    (host,) = result.hosts
    assert "host-timeout" in host.flags
    assert sum(host.summary.values()) < 65535
    whole = asyncio.run(
        scan(["127.0.0.1"], "-", options=ScanOptions(engine="connect", deadline=0.05))
    )
    assert sum(whole.hosts[0].summary.values()) < 65535


def test_min_rate_keeps_a_window_floor() -> None:
    from ppsguard.scan.engines.base import EngineConfig

    cfg = EngineConfig(PRESETS[4], min_rate=10000)
    assert cfg.min_window(PRESETS[4], 8) == 1001
    assert EngineConfig(PRESETS[4]).min_window(PRESETS[4], 8) == 8
