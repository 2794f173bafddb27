"""The desk's parts without a server: the building document, the alert-file follower, the
listen address and token checks, and the guard's decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ppsguard.cli.serve import is_loopback, parse_listen, read_token
from ppsguard.errors import UsageError
from ppsguard.serve.building import CODES, building_data
from ppsguard.serve.live import FileFollower, item_of, parse_alert_source
from ppsguard.serve.security import (
    SESSION_COOKIE,
    Guard,
    csrf_ok,
    host_names,
    session_value,
)


def test_building_keeps_the_worst_verdict_per_door_and_counts_lit_ones() -> None:
    rows = [
        (22, "tcp", "open", "documented", "ssh"),
        (22, "tcp", "open", "risky", None),  # the same door seen twice: risky wins
        (53, "udp", "open|filtered", None, "dns"),
        (80, "tcp", "filtered", None, None),
        (8080, "tcp", "open", None, "http-alt"),
        (65535, "tcp", "closed", None, None),
        (70000, "tcp", "open", None, None),  # out of range: ignored
        (1, "icmp", "open", None, None),  # unknown protocol: ignored
    ]
    doc = building_data("web1", 7, "audit", rows)
    doors = list(zip(doc["port"], doc["proto"], doc["code"], doc["service"], strict=True))
    named = [
        (p, doc["protocols"][pr], CODES[c], doc["services"][s] if s >= 0 else None)
        for p, pr, c, s in doors
    ]
    assert named == [
        (22, "tcp", "risky", "ssh"),
        (53, "udp", "open|filtered", "dns"),
        (80, "tcp", "filtered", None),
        (8080, "tcp", "open", "http-alt"),
        (65535, "tcp", "closed", None),
    ]
    assert doc["lit"] == 2  # risky 22 and open 8080; filtered, closed, open|filtered are dim
    assert json.loads(json.dumps(doc)) == doc


def test_the_follower_reads_only_new_whole_alert_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    old = {"type": "alert", "id": "a#0", "kind": "scan", "severity": "high", "message": "old"}
    path.write_text(json.dumps(old) + "\n", encoding="utf-8")
    follower = FileFollower("web1", path)
    assert follower.poll() == []  # what was there before is not news
    new = {**old, "id": "b#0", "message": "new", "ports": [22, 99999, "x"], "last_seen": 5.0}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(new) + "\n" + '{"type": "event"}\n' + "not json\n")
        handle.write(json.dumps({**old, "message": "half"})[:20])  # an unfinished line
    items = follower.poll()
    assert [(i.host, i.message, i.ports, i.at) for i in items] == [("web1", "new", (22,), 5.0)]
    path.write_text(json.dumps({**old, "message": "after rotation"}) + "\n", encoding="utf-8")
    assert [i.message for i in follower.poll()] == ["after rotation"]


def test_alert_records_that_are_not_alerts_give_nothing() -> None:
    assert item_of([], "h") is None
    assert item_of({"type": "event"}, "h") is None
    item = item_of({"message": 3, "entry": {"id": "e", "file": "r.yaml", "line": 4}}, "h")
    assert item is not None and item.message == "3" and item.entry == "e r.yaml:4"
    event = {
        "type": "event",
        "ts": 7.5,
        "kind": "opened",
        "proto": "tcp",
        "id.orig_h": "198.18.0.66",
        "id.orig_p": 40000,
        "id.resp_h": "198.18.0.2",
        "id.resp_p": 110,
        "direction": "inbound",
        "entry": "pop3-others",
    }
    knock = item_of(event, "web1")
    assert knock is not None and knock.type == "event" and knock.ports == (110,)
    assert knock.message == "198.18.0.66:40000 -> 198.18.0.2:110" and knock.entry == "pop3-others"
    outbound = item_of({**event, "direction": "outbound"}, "web1")
    assert outbound is not None and outbound.ports == ()  # not a knock at one of our doors
    assert parse_alert_source("web1=/tmp/a.jsonl") == ("web1", Path("/tmp/a.jsonl"))
    assert parse_alert_source("/tmp/db1.jsonl") == ("db1", Path("/tmp/db1.jsonl"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("[::1]:9000", ("::1", 9000)),
        (":8080", ("127.0.0.1", 8080)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8443", "127.0.0.1:0", "127.0.0.1:70000", "desk.example:80"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


def test_loopback_and_tokens(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("198.18.0.1") and not is_loopback("0.0.0.0")
    short = tmp_path / "short"
    short.write_text("abc\n", encoding="utf-8")
    with pytest.raises(UsageError):
        read_token(short)
    good = tmp_path / "good"
    good.write_text("0123456789abcdefXYZ\n", encoding="utf-8")
    assert read_token(good) == "0123456789abcdefXYZ"


def _scope(*headers: tuple[str, str]) -> dict[str, object]:
    return {"headers": [(k.encode(), v.encode()) for k, v in headers]}


def test_the_guard_accepts_the_bearer_token_or_its_session_cookie_only() -> None:
    guard = Guard(token="secret-token-0123456789", hosts=None)
    assert not guard.authorised(_scope())
    assert not guard.authorised(_scope(("authorization", "Bearer wrong")))
    assert guard.authorised(_scope(("authorization", "Bearer secret-token-0123456789")))
    cookie = f"{SESSION_COOKIE}={session_value('secret-token-0123456789')}"
    assert guard.authorised(_scope(("cookie", cookie)))
    assert not guard.authorised(_scope(("cookie", f"{SESSION_COOKIE}=secret-token-0123456789")))
    assert Guard(token=None, hosts=None).authorised(_scope())


def test_a_loopback_desk_answers_only_its_own_host_names() -> None:
    names = host_names("127.0.0.1", 8443)
    assert {"127.0.0.1:8443", "localhost:8443", "[::1]:8443"} <= names
    guard = Guard(token=None, hosts=names)
    assert guard.host_ok(_scope(("host", "localhost:8443")))
    assert not guard.host_ok(_scope(("host", "rebound.example:8443")))
    assert not guard.host_ok(_scope())


def test_csrf_needs_the_cookie_and_the_same_field() -> None:
    scope = _scope(("cookie", "pps_csrf=abc123"))
    assert csrf_ok(scope, "abc123")
    assert not csrf_ok(scope, "abc124")
    assert not csrf_ok(scope, None)
    assert not csrf_ok(_scope(), "abc123")
