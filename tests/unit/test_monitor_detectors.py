"""The detector pipeline on synthetic event streams: scans, backscatter, registry findings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from ppsguard.model.events import Direction, Event, EventKind, EvidenceSource
from ppsguard.monitor.attempts import AttemptTracker
from ppsguard.monitor.detectors import Detectors
from ppsguard.monitor.expectations import Expectations
from ppsguard.monitor.window import WindowDetector
from ppsguard.registry.load import load_registry

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
HOST = ipaddress.ip_address("198.18.0.2")
SCANNER = ipaddress.ip_address("198.18.0.66")


def ev(kind: EventKind, time: float, port: int, *, src=SCANNER, sport=40000, **kw) -> Event:  # type: ignore[no-untyped-def]
    return Event(
        time=time,
        kind=kind,
        source=EvidenceSource.SYNTHETIC,
        protocol=kw.pop("protocol", "tcp"),
        orig=src,
        orig_port=sport,
        resp=kw.pop("resp", HOST),
        resp_port=port,
        direction=kw.pop("direction", Direction.INBOUND),
        **kw,
    )


def probe(detectors: Detectors, time: float, port: int, *, answered: bool) -> list[str]:
    alerts = detectors.feed(ev(EventKind.OPENED, time, port, sport=50000 + port))
    second = EventKind.ANSWERED if answered else EventKind.REFUSED
    alerts += detectors.feed(ev(second, time + 0.001, port, sport=50000 + port))
    return [a.kind for a in alerts]


def test_a_vertical_scan_is_flagged_after_four_refused_probes() -> None:
    detectors = Detectors()
    kinds = [probe(detectors, float(i), 1000 + i, answered=False) for i in range(4)]
    assert kinds[:3] == [[], [], []]
    assert kinds[3] == ["scan"]
    alert = detectors.book.alerts[f"scan|{SCANNER}"]
    assert alert.remote == SCANNER and alert.local == HOST
    assert alert.ports == [1000, 1001, 1002, 1003] and alert.count == 4
    assert alert.first_seen == 0.0


def test_the_scan_alert_is_updated_not_repeated() -> None:
    detectors = Detectors(update_interval=1000.0)
    announced = []
    for i in range(200):
        announced += probe(detectors, i * 0.01, 2000 + i, answered=False)
    assert announced == ["scan"]
    assert detectors.book.alerts[f"scan|{SCANNER}"].count == 200
    assert [a.count for a in detectors.flush()] == [200]


def test_a_growing_alert_keeps_its_ports_sorted_and_distinct() -> None:
    from ppsguard.model.findings import Severity
    from ppsguard.monitor.alerts import AlertBook

    book = AlertBook()
    for ports in ([443, 22], [80], [22, 8080, 1], [], [443], [65535, 0]):
        alert, _ = book.raise_or_update(
            key="k", kind="scan", severity=Severity.HIGH, message="m", time=1.0, ports=ports
        )
    assert alert.ports == [0, 1, 22, 80, 443, 8080, 65535]


def test_a_benign_client_with_twenty_answered_connections_raises_nothing() -> None:
    detectors = Detectors()
    client = ipaddress.ip_address("198.18.0.12")
    for i in range(20):
        opened = ev(EventKind.OPENED, float(i), 110, src=client, sport=41000 + i)
        answered = ev(EventKind.ANSWERED, i + 0.01, 110, src=client, sport=41000 + i)
        assert detectors.feed(opened) == [] and detectors.feed(answered) == []
    assert detectors.book.alerts == {}


def test_backscatter_is_not_a_scan() -> None:
    detectors = Detectors()
    for i in range(50):  # unsolicited SYN-ACKs / RSTs picked up mid-stream
        stray = ev(EventKind.OPENED, float(i), 30000 + i, initiated=False)
        assert detectors.feed(stray) == []
        assert detectors.feed(ev(EventKind.REFUSED, i + 0.1, 30000 + i, initiated=False)) == []
    assert detectors.tick(1000.0) == []
    assert detectors.stats["attempts"] == 0


def test_unanswered_attempts_fail_after_the_timeout() -> None:
    tracker = AttemptTracker(answer_timeout=3.0)
    for i in range(3):
        assert tracker.feed(ev(EventKind.OPENED, float(i), 5000 + i)) == []
    assert tracker.expire(3.5) and len(tracker.pending) == 2
    assert len(tracker.expire(10.0)) == 2


def test_an_ipv4_and_an_ipv6_attempt_of_the_same_integer_are_two_attempts() -> None:
    """198.18.0.66 and ::c612:42 share an integer; their attempts must not share a key."""
    tracker = AttemptTracker(answer_timeout=3.0)
    v6_scanner, v6_host = ipaddress.ip_address("::c612:42"), ipaddress.ip_address("::c612:2")
    assert int(v6_scanner) == int(SCANNER) and int(v6_host) == int(HOST)
    tracker.feed(ev(EventKind.OPENED, 0.0, 22))
    tracker.feed(ev(EventKind.OPENED, 0.1, 22, src=v6_scanner, resp=v6_host))
    assert len(tracker.pending) == 2
    decided = tracker.feed(ev(EventKind.REFUSED, 0.2, 22, src=v6_scanner, resp=v6_host))
    assert [(a.remote, a.target) for a in decided] == [(v6_scanner, v6_host)]
    assert len(tracker.pending) == 1


def test_window_presets_count_failed_targets_in_the_window() -> None:
    from ppsguard.monitor.attempts import Attempt
    from ppsguard.monitor.trw import Outcome

    window = WindowDetector("high")  # 600 s, 10 targets
    results = [
        window.observe(Attempt(i * 50.0, SCANNER, HOST, 100 + i, "tcp", Outcome.FAILURE))
        for i in range(10)
    ]
    assert results == [False] * 9 + [True]
    slow = WindowDetector("low")  # 60 s, 50 targets: a slow scan passes unseen
    assert not any(
        slow.observe(Attempt(i * 50.0, SCANNER, HOST, 100 + i, "tcp", Outcome.FAILURE))
        for i in range(100)
    )


def seed_detectors() -> Detectors:
    return Detectors(Expectations(load_registry(SEED), "building"))


def test_unenforced_pop3_from_an_outsider_is_an_unauthorized_peer_of_entry_pop3() -> None:
    detectors = seed_detectors()
    outsider = ipaddress.ip_address("198.18.0.50")
    alerts = detectors.feed(ev(EventKind.ANSWERED, 1.0, 110, src=outsider))
    assert [a.kind for a in alerts] == ["unauthorized-peer"]
    assert alerts[0].entry is not None and alerts[0].entry.id == "pop3"
    assert "pop3-others" in alerts[0].message


def test_pop3_from_an_allowed_peer_and_http_from_anyone_are_expected() -> None:
    detectors = seed_detectors()
    assert (
        detectors.feed(ev(EventKind.ANSWERED, 1.0, 110, src=ipaddress.ip_address("198.18.0.12")))
        == []
    )
    assert (
        detectors.feed(ev(EventKind.ANSWERED, 1.0, 80, src=ipaddress.ip_address("198.18.0.99")))
        == []
    )


def test_an_answered_undocumented_port_is_flagged() -> None:
    alerts = seed_detectors().feed(ev(EventKind.ANSWERED, 1.0, 1337))
    assert [a.kind for a in alerts] == ["undocumented-port"]


def test_outbound_not_in_uses_and_new_unregistered_listener() -> None:
    detectors = seed_detectors()
    out = ev(
        EventKind.OPENED,
        1.0,
        443,
        src=HOST,
        resp=ipaddress.ip_address("198.18.9.9"),
        direction=Direction.OUTBOUND,
    )
    assert [a.kind for a in detectors.feed(out)] == ["outbound-not-declared"]
    listener = Event(
        time=2.0,
        kind=EventKind.LISTENER_ADDED,
        source=EvidenceSource.SOCKETS,
        protocol="tcp",
        resp=ipaddress.ip_address("0.0.0.0"),
        resp_port=4444,
        process="nc",
    )
    assert [a.kind for a in detectors.feed(listener)] == ["unregistered-listener"]
    documented = Event(
        time=2.0,
        kind=EventKind.LISTENER_ADDED,
        source=EvidenceSource.SOCKETS,
        protocol="tcp",
        resp=ipaddress.ip_address("0.0.0.0"),
        resp_port=80,
        process="nginx",
    )
    assert detectors.feed(documented) == []


def test_logged_denies_map_to_their_entry_and_count_as_failed_attempts() -> None:
    detectors = seed_detectors()
    assert detectors.expectations is not None
    assert detectors.expectations.action_of("mysql") is not None
    assert detectors.expectations.action_of("mysql").value in ("deny", "reject")  # type: ignore[union-attr]
    kinds = []
    for i in range(4):
        logged = ev(
            EventKind.LOGGED,
            float(i),
            3306 + i * 0,
            sport=45000 + i,
            entry_id="mysql",
            state="dropped",
            resp=ipaddress.ip_address(f"198.18.0.{2 + i}"),
        )
        kinds += [a.kind for a in detectors.feed(logged)]
    assert kinds == ["scan"]


def test_an_open_port_found_by_a_connect_scan_does_not_delay_the_decision() -> None:
    tracker = AttemptTracker(abort_grace=0.5)
    opened = ev(EventKind.OPENED, 0.0, 80, sport=1)
    assert tracker.feed(opened) == []
    assert tracker.feed(ev(EventKind.ANSWERED, 0.001, 80, sport=1)) == []
    aborted = tracker.feed(ev(EventKind.REFUSED, 0.002, 80, sport=1))
    assert [a.outcome.value for a in aborted] == ["failure"]
    # a client that keeps its connection is a success once the grace has passed
    tracker.feed(ev(EventKind.OPENED, 1.0, 443, sport=2))
    tracker.feed(ev(EventKind.ANSWERED, 1.001, 443, sport=2))
    assert tracker.expire(1.2) == []
    assert [a.outcome.value for a in tracker.expire(1.6)] == ["success"]
