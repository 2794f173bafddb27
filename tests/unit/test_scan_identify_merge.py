"""Service identification into scan results: one merge for the CLI, the library and the audit;
-sV passes the scope gate; the elapsed time covers the -sV phase.

Real loopback servers answer (or stay silent); nothing leaves this machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppsguard.cli.app import app, main
from ppsguard.errors import UsageError
from ppsguard.model.net import Protocol
from ppsguard.model.scan import (
    Confidence,
    Evidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
)
from ppsguard.report.nmapxml import render_xml
from ppsguard.scan.engine import ScanOptions, run_sync, scan_sync
from ppsguard.scan.identify import identify_open_ports
from ppsguard.scan.identify.merge import merge_service, merge_services
from ppsguard.scan.scope import ScopeGate

LOOPBACK = ipaddress.ip_address("127.0.0.1")
SSH = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"


class Server:
    """A loopback TCP server that sends `banner` to each client and counts them."""

    def __init__(self, banner: bytes) -> None:
        self.banner, self.accepted = banner, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                if self.banner:
                    conn.sendall(self.banner)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    running = Server(getattr(request, "param", SSH))
    yield running
    running.close()


def _result(port: int, guess: str | None) -> ScanResult:
    service = ServiceInfo(name=guess, confidence=Confidence.GUESSED) if guess else None
    open_port = PortResult(port, Protocol.TCP, PortState.OPEN, Reason.SYN_ACK, service)
    host = HostResult(LOOPBACK, None, HostState.UP, (open_port,), {"open": 1})
    stats = ScanStats(dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 0.5, 1, 0, 7)
    return ScanResult((host,), stats, engine="connect")


def test_merge_keeps_the_guessed_name_when_nothing_matched() -> None:
    port = _result(22, "ssh").hosts[0].ports[0]
    spoke = ServiceInfo(name=None, evidence=Evidence("null", "ZZQX"))
    merged = merge_service(port, spoke)
    assert merged is not None and merged.name == "ssh" and merged.confidence is Confidence.GUESSED
    assert merged.evidence == spoke.evidence
    found = ServiceInfo(name="http", confidence=Confidence.CONFIRMED)
    assert merge_service(port, found) == found
    assert merge_service(port, None) == port.service
    assert merge_services(_result(22, None), {}) == _result(22, None)


@pytest.mark.parametrize("server", [b"ZZQX unknown protocol 1.0\r\n"], indirect=True)
def test_unknown_service_keeps_its_port_guess(server: Server) -> None:
    """The audit's identification once dropped this name (its own drifted copy of the merge)."""
    result = run_sync(identify_open_ports(_result(server.port, "guessname"), timeout=1.0))
    service = result.hosts[0].ports[0].service
    assert service is not None and service.name == "guessname"
    assert service.confidence is Confidence.GUESSED
    assert service.evidence is not None and "ZZQX" in (service.evidence.response or "")


def test_library_scan_identifies_services(server: Server) -> None:
    options = ScanOptions(engine="connect", identify=True, service_timeout=2.0)
    result = scan_sync(["127.0.0.1"], str(server.port), options=options)
    [port] = result.hosts[0].ports
    assert port.service is not None and port.service.name == "ssh"
    assert port.service.product == "OpenSSH" and port.service.confidence is not Confidence.GUESSED


def test_identification_passes_the_gate(server: Server) -> None:
    outside = ScopeGate(scope=[ipaddress.ip_network("198.18.0.0/24")])
    with pytest.raises(UsageError, match="--scope") as refused:
        run_sync(identify_open_ports(_result(server.port, None), gate=outside))
    assert refused.value.token == "127.0.0.1"
    excluded = ScopeGate(exclude=[ipaddress.ip_network("127.0.0.1/32")])
    untouched = run_sync(identify_open_ports(_result(server.port, "x"), gate=excluded))
    assert untouched == _result(server.port, "x")
    with pytest.raises(UsageError, match="dry run"):
        run_sync(identify_open_ports(_result(server.port, None), gate=ScopeGate(dry_run=True)))
    assert server.accepted == 0


def test_from_nmap_file_with_service_probes_honours_scope_exclude_and_dry_run(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = tmp_path / "scan.xml"
    xml.write_text(render_xml(_result(server.port, None)), "utf-8")
    scope = tmp_path / "scope.txt"
    scope.write_text("198.18.0.0/24\n", "utf-8")
    base = ["scan", "--from-nmap", str(xml), "-sV", "--json"]
    assert main([*base, "--scope", str(scope)]) == 2
    assert "127.0.0.1" in capsys.readouterr().err
    assert main([*base, "--exclude", "127.0.0.1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hosts"][0]["ports"][0]["service"] is None  # excluded: not probed
    assert main([*base, "--dry-run"]) == 0
    assert "would identify the services on 1 open port(s) of 1 host(s)" in capsys.readouterr().out
    assert server.accepted == 0
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["hosts"][0]["ports"][0]["service"]["name"] == "ssh"
    assert server.accepted > 0


def test_summary_time_includes_the_service_phase(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The -sV phase's duration, measured by identification's clock, is in the elapsed time."""
    ticks = iter([1000.0, 1100.0])
    monkeypatch.setattr("ppsguard.scan.identify._clock", lambda: next(ticks))
    args = ["scan", "--connect", "-sV", "--service-timeout", "1", "-p", str(server.port)]
    result = CliRunner().invoke(app, [*args, "--json", "127.0.0.1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stats"]["elapsed_s"] >= 100.0
    ticks = iter([1000.0, 1100.0])
    table = CliRunner().invoke(app, [*args, "127.0.0.1"])
    assert table.exit_code == 0, table.output
    [summary] = [line for line in table.output.splitlines() if " up in " in line]
    assert float(summary.split(" in ")[1].split("s,")[0]) >= 100.0


class UdpServer:
    """A loopback UDP socket that answers only DNS queries (id 0x5053) or nothing at all."""

    def __init__(self, answers: bool) -> None:
        self.answers, self.asked = answers, 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                continue
            if data[:2] == b"\x50\x53":
                self.asked += 1
                if self.answers:  # the query echoed as a response: QR set, no answer records
                    self.sock.sendto(data[:2] + b"\x80\x00" + data[4:], peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def udp_pair() -> Iterator[tuple[UdpServer, UdpServer]]:
    answering, silent = UdpServer(answers=True), UdpServer(answers=False)
    yield answering, silent
    answering.close()
    silent.close()


def _udp_result(*ports: int) -> ScanResult:
    listed = tuple(
        PortResult(p, Protocol.UDP, PortState.OPEN_FILTERED, Reason.NO_RESPONSE) for p in ports
    )
    host = HostResult(LOOPBACK, None, HostState.UP, listed, {"open|filtered": len(ports)})
    stats = ScanStats(dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 0.5, 2, 0, 7)
    return ScanResult((host,), stats, engine="udp")


def test_merge_promotes_an_answered_open_filtered_udp_port_and_drops_silent_ones() -> None:
    dns = ServiceInfo(name="dns", confidence=Confidence.CONFIRMED)
    result = _udp_result(5533, 7777)
    found = {(LOOPBACK, 5533, Protocol.UDP): dns}
    [host] = merge_services(result, found, keep_silent=False).hosts
    [port] = host.ports
    assert (port.port, port.state, port.reason) == (5533, PortState.OPEN, Reason.UDP_RESPONSE)
    assert host.summary == {"open": 1, "open|filtered": 1}
    [kept] = merge_services(result, found, keep_silent=True).hosts
    assert [p.port for p in kept.ports] == [5533, 7777]
    assert kept.ports[1].state is PortState.OPEN_FILTERED
    assert merge_services(result, {}, keep_silent=False).hosts[0].ports == ()


def test_identification_asks_silent_udp_ports_through_the_gate(
    udp_pair: tuple[UdpServer, UdpServer],
) -> None:
    answering, silent = udp_pair
    result = _udp_result(answering.port, silent.port)
    with pytest.raises(UsageError, match="dry run"):
        run_sync(identify_open_ports(result, gate=ScopeGate(dry_run=True)))
    assert answering.asked == silent.asked == 0
    excluded = ScopeGate(exclude=[ipaddress.ip_network("127.0.0.0/8")])
    assert run_sync(identify_open_ports(result, gate=excluded)) == result
    identified = run_sync(identify_open_ports(result, timeout=1.0, keep_silent=False))
    [port] = identified.hosts[0].ports
    assert port.port == answering.port and port.state is PortState.OPEN
    assert port.service is not None and port.service.name == "dns"
    assert answering.asked > 0 and silent.asked > 0


def test_library_udp_scan_with_identify_reports_the_answering_port_open(
    udp_pair: tuple[UdpServer, UdpServer],
) -> None:
    answering, silent = udp_pair
    spec = f"U:{answering.port},{silent.port}"
    options = ScanOptions(engine="udp", skip_discovery=True, identify=True, service_timeout=1.0)
    [host] = scan_sync(["127.0.0.1"], spec, options=options).hosts
    [port] = host.ports  # the silent one was listed for identification only, then dropped
    assert (port.port, port.state, port.reason) == (
        answering.port,
        PortState.OPEN,
        Reason.UDP_RESPONSE,
    )
    assert port.service is not None and port.service.name == "dns"
    assert host.summary.get("open") == 1 and host.summary.get("open|filtered") == 1
    options.all_states = True
    [host] = scan_sync(["127.0.0.1"], spec, options=options).hosts
    states = {p.port: p.state for p in host.ports}
    assert states == {answering.port: PortState.OPEN, silent.port: PortState.OPEN_FILTERED}
