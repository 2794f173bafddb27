"""Property tests: hostile text never becomes markup; ids ignore pids; `ip -j addr` parsing."""

from __future__ import annotations

import datetime as dt
import html.parser
import ipaddress
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.audit import baseline_for, evaluate
from ppsguard.audit.observe import parse_ip_addr_json
from ppsguard.audit.views import Listener, Observations, OutsideView, Reach, ReachState, Vantage
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import exposure_of
from ppsguard.report.html import render_html

LAB = ipaddress.ip_address("198.18.0.1")


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.lit = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a" and "lit" in (dict(attrs).get("class") or "").split():
            self.lit += 1


def _report(ports: list[int], text: str, pid: int):  # type: ignore[no-untyped-def]
    listeners = tuple(
        Listener(
            Protocol.TCP,
            Family.IPV4,
            ipaddress.ip_address("0.0.0.0"),
            port,
            exposure_of(ipaddress.ip_address("0.0.0.0")),
            text,
            f"/x/{text}",
            pids=(pid,),
        )
        for port in ports
    )
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset((Protocol.TCP, p) for p in ports),
        tuple(Reach(Protocol.TCP, p, LAB, ReachState.OPEN, text, banner=text) for p in ports),
    )
    baseline, _ = baseline_for(None, None)
    obs = Observations("h", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), listeners, outside)
    return evaluate(obs, baseline, registry_file=None, host=None, netns=None)


@settings(max_examples=60, deadline=None)
@given(
    ports=st.lists(st.integers(0, 65535), min_size=0, max_size=40, unique=True),
    text=st.text(max_size=80)
    | st.sampled_from(["<script>x</script>", "<img src=x onerror=y>", '"><b>', "' onfocus='a"]),
    pid=st.integers(1, 4_000_000),
)
def test_html_never_turns_host_text_into_markup(ports: list[int], text: str, pid: int) -> None:
    report = _report(ports, text, pid)
    parser = _Tags()
    parser.feed(render_html(report))
    assert not {"script", "img", "b", "iframe"} & set(parser.tags)
    assert parser.lit == len(report.doors) == len(ports)


@settings(max_examples=30, deadline=None)
@given(
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=10, unique=True),
    pids=st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)),
)
def test_finding_ids_do_not_depend_on_pids(ports: list[int], pids: tuple[int, int]) -> None:
    first = {f.id for f in _report(ports, "svc", pids[0]).findings}
    second = {f.id for f in _report(ports, "svc", pids[1]).findings}
    assert first == second


def test_ip_addr_json_keeps_routable_addresses_only() -> None:
    text = json.dumps(
        [
            {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "::1"}]},
            {
                "ifname": "eth0",
                "addr_info": [
                    {"local": "198.18.0.1"},
                    {"local": "fe80::1"},
                    {"local": "2001:db8::1"},
                    {"local": "not-an-address"},
                    {"nolocal": 1},
                ],
            },
            "garbage",
        ]
    )
    assert [str(a) for a in parse_ip_addr_json(text)] == ["198.18.0.1", "2001:db8::1"]


@given(st.text(max_size=200))
def test_ip_addr_json_never_crashes(text: str) -> None:
    parse_ip_addr_json(text)
