"""`pps watch` against real traffic in the lab: scans by nmap and pps, the seed building with and
without its rule set, short connections, outbound use, listeners, and a receive-buffer overrun."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from test_firewall_helpers import pps, probe
from watch_helpers import Watcher

from ppsguard.lab.hosts import HostSpec

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"


def seed_lab(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory(
        [
            HostSpec("fw", ipv4="198.18.0.1"),
            HostSpec("ip1", ipv4="198.18.0.11"),
            HostSpec("other", ipv4="198.18.0.50"),
        ]
    )


@pytest.mark.lab
@pytest.mark.parametrize("scanner", ["nmap", "pps"])
def test_a_scan_is_flagged_within_five_probes_and_a_benign_client_is_not(
    lab_factory, scanner: str
) -> None:
    lab = lab_factory(
        [
            HostSpec("target", ipv4="198.18.0.2"),
            HostSpec("attacker", ipv4="198.18.0.66"),
            HostSpec("client", ipv4="198.18.0.12"),
        ]
    )
    target = lab["target"]
    target.listen(80)
    with Watcher(target) as watch:
        for _ in range(20):
            assert probe(lab["client"], target.ipv4, 80, "tcp")[0] == "accepted"
        if scanner == "nmap":
            lab["attacker"].run(
                ["nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-200", str(target.ipv4)]
            )
        else:
            lab["attacker"].run(
                [*_pps_argv(), "scan", "--syn", "-p", "1-200", str(target.ipv4)], check=False
            )
        assert watch.wait_for(lambda: bool(watch.alerts("scan")), 10)
        # the scan is over: its last rate-limited update is announced at the watch's next tick
        watch.wait_for(lambda: watch.alerts("scan")[-1]["count"] >= 100, 10)
    assert watch.bad_lines == [], (watch.process.returncode, watch.stderr)
    scans = watch.alerts("scan")
    assert {a["remote"] for a in scans} == {"198.18.0.66"}, scans
    first = scans[0]
    assert first["count"] <= 5 and first["local"] == "198.18.0.2"
    last = scans[-1]
    assert len(last["ports"]) >= 100 and last["count"] >= 100  # updated while the scan went on
    assert not [a for a in watch.alerts() if a["remote"] == "198.18.0.12"]
    assert watch.process.returncode == 0


def _pps_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "ppsguard"]


@pytest.mark.lab
@pytest.mark.parametrize("target", ["nftables", "iptables"])
def test_seed_building_enforced_logs_map_to_their_entries(lab_factory, tmp_path, target) -> None:
    lab = seed_lab(lab_factory)
    fw = lab["fw"]
    for port in (80, 110, 3306):
        fw.listen(port)
    applied = pps(
        ["policy", "apply", str(SEED), "--netns", fw.netns, "--confirm-within", "0", "-t", target],
        str(tmp_path),
    )
    assert applied.returncode == 0, applied.stderr
    with Watcher(fw, SEED) as watch:
        ok, ok_port = probe(lab["ip1"], fw.ipv4, 110, "tcp")
        denied, denied_port = probe(lab["other"], fw.ipv4, 110, "tcp")
        mysql, mysql_port = probe(lab["ip1"], fw.ipv4, 3306, "tcp")
        assert (ok, denied, mysql) == ("accepted", "timeout", "timeout")

        def logged(port: int) -> list[str]:
            return [
                e.get("entry", "")
                for e in watch.events(lambda r: r["kind"] == "logged" and r["id.orig_p"] == port)
            ]

        assert watch.wait_for(lambda: bool(logged(ok_port) and logged(denied_port)), 5)
        assert watch.wait_for(lambda: bool(logged(mysql_port)), 5)
    assert set(logged(ok_port)) == {"pop3"}
    assert set(logged(denied_port)) == {"pop3-others"}
    assert set(logged(mysql_port)) == {"mysql"}
    accepted = watch.events(lambda r: r["kind"] == "logged" and r["id.orig_p"] == ok_port)
    assert {e["state"] for e in accepted} == {"accepted"}
    assert not watch.alerts("unauthorized-peer")


@pytest.mark.lab
def test_seed_building_not_enforced_flags_the_outsider_on_pop3(lab_factory) -> None:
    lab = seed_lab(lab_factory)
    fw = lab["fw"]
    fw.listen(110)
    with Watcher(fw, SEED) as watch:
        assert probe(lab["ip1"], fw.ipv4, 110, "tcp")[0] == "accepted"
        assert probe(lab["other"], fw.ipv4, 110, "tcp")[0] == "accepted"
        assert watch.wait_for(lambda: bool(watch.alerts("unauthorized-peer")), 5)
    alerts = watch.alerts("unauthorized-peer")
    assert [a["remote"] for a in alerts] == ["198.18.0.50"]
    answered = watch.events(lambda r: r["kind"] == "answered" and r["id.resp_p"] == 110)
    assert answered and all(e.get("process") == "python" for e in answered)  # who accepted it
    assert alerts[0]["entry"]["id"] == "pop3" and alerts[0]["entry"]["line"] > 0


@pytest.mark.lab
def test_short_connections_outbound_use_and_listeners(lab_factory) -> None:
    lab = seed_lab(lab_factory)
    fw, other = lab["fw"], lab["other"]
    fw.listen(80)
    other.listen(8443)
    with Watcher(fw, SEED) as watch:
        # a connection opened and closed within a millisecond
        _, sport = probe(other, fw.ipv4, 80, "tcp", timeout=0.5)
        assert watch.wait_for(
            lambda: bool(watch.events(lambda r: r["id.orig_p"] == sport and r["kind"] == "opened")),
            5,
        )
        # an outbound connection no `uses` entry covers
        assert probe(fw, other.ipv4, 8443, "tcp")[0] == "accepted"
        assert watch.wait_for(lambda: bool(watch.alerts("outbound-not-declared")), 5)
        # a documented service restarting says nothing; a new undocumented listener does
        before = len(watch.alerts())
        restarted = fw.listen(21)
        assert watch.wait_for(  # the watch has seen it before it restarts
            lambda: bool(
                watch.events(lambda r: r["kind"] == "listener-added" and r.get("id.resp_p") == 21)
            ),
            10,
        )
        restarted.stop()
        fw.listen(21)
        started = time.monotonic()
        fw.listen(4444)
        assert watch.wait_for(lambda: bool(watch.alerts("unregistered-listener")), 5)
        seen = next(t for t, r in watch.records if r.get("kind") == "unregistered-listener")
        assert seen - started <= 2.0
    listeners = watch.alerts("unregistered-listener")
    assert [a["ports"] for a in listeners] == [[4444]]
    assert not [a for a in watch.alerts()[before:] if 21 in a["ports"]]


@pytest.mark.lab
def test_an_overrun_is_reported_and_resynchronised(lab_factory) -> None:
    lab = lab_factory([HostSpec("target", ipv4="198.18.0.2"), HostSpec("flood", ipv4="198.18.0.9")])
    target, flood = lab["target"], lab["flood"]
    target.listen(80)
    with Watcher(target, None, "--receive-buffer", "4096") as watch:

        def burst() -> None:
            # As fast as possible; a connect that times out on a busy machine still made
            # conntrack events (a SYN), which is all the flood is for.
            for _ in range(3000):
                with socket.socket() as sock:
                    sock.settimeout(1)
                    with contextlib.suppress(OSError):
                        sock.connect((str(target.ipv4), 80))

        flood.call(burst, timeout=120)
        assert watch.wait_for(lambda: bool(watch.events(lambda r: r["kind"] == "lost")), 10)
    lost = watch.events(lambda r: r["kind"] == "lost")
    assert lost[0]["count"] >= 0 and "resynchronised" in lost[0]["detail"]
    assert watch.alerts("events-lost")
    assert watch.process.returncode == 0, watch.stderr


@pytest.mark.lab
def test_sighup_reloads_and_a_broken_registry_keeps_the_old_one(lab_factory, tmp_path) -> None:
    import signal

    lab = lab_factory([HostSpec("fw", ipv4="198.18.0.1")])
    registry = tmp_path / "registry.yaml"
    registry.write_text(SEED.read_text())
    with Watcher(lab["fw"], registry) as watch:
        # the watch reloads at its loop's next turn, and says so: wait for each answer
        registry.write_text("version: 1\nhosts: [unclosed\n")
        watch.process.send_signal(signal.SIGHUP)
        assert watch.wait_for(lambda: "not reloaded" in watch.stderr_so_far(), 20)
        registry.write_text(SEED.read_text())
        watch.process.send_signal(signal.SIGHUP)
        assert watch.wait_for(lambda: "registry reloaded" in watch.stderr_so_far(), 20)
    assert watch.process.returncode == 0
    assert "registry not reloaded, keeping the previous one" in watch.stderr
    assert "registry.yaml:3:1: YAML syntax error" in watch.stderr
    assert "registry reloaded" in watch.stderr
