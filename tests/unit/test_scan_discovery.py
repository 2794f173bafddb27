"""Pure parts of host discovery: route tables, attached subnets and their edge addresses, the
ARP/ND/ICMP packet tables, method parsing, and how sweep results are counted and shown."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.cli.scan import compact_json, result_json
from ppsguard.cli.scan_render import host_count, render_table
from ppsguard.errors import UsageError
from ppsguard.model.scan import HostResult, HostState, Reason, ScanResult, ScanStats
from ppsguard.scan.discovery import ALL_METHODS, Method, parse_methods, special_addresses
from ppsguard.scan.engines import discovery_packets as pk
from ppsguard.scan.engines.packets import checksum_fold, words
from ppsguard.scan.links import Links, parse_local4, parse_local6, parse_routes4, parse_routes6

ROUTE4 = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FCFFFF\t0\t0\t0
eth0\t000112C6\t090012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
p2p\t080013C6\t00000000\t0001\t0\t0\t0\tFEFFFFFF\t0\t0\t0
dead\t000013C6\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
ROUTE6 = (
    "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "20010db8000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n"
    "20010db8000000000000000000000002 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
)
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 198.18.0.0/22 2 0 2
        |-- 198.18.0.0
           /22 link UNICAST
        |-- 198.18.0.1
           /32 host LOCAL
     |-- 198.18.3.255
        /32 link BROADCAST
"""
IF_INET6 = "20010db8000000000000000000000002 02 40 00 80     eth0\n"


def a(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.fixture
def links() -> Links:
    return Links(parse_routes4(ROUTE4) + parse_routes6(ROUTE6), parse_local4(FIB_TRIE))


def test_route_tables_parse_to_networks_gateways_and_interfaces() -> None:
    routes4 = {(str(r.network), r.interface, str(r.gateway)) for r in parse_routes4(ROUTE4)}
    assert routes4 == {
        ("0.0.0.0/0", "eth0", "198.18.0.1"),
        ("198.18.0.0/22", "eth0", "None"),
        ("198.18.1.0/24", "eth0", "198.18.0.9"),
        ("198.19.0.8/31", "p2p", "None"),
    }  # the reject route is dropped
    routes6 = {(str(r.network), r.interface, str(r.gateway)) for r in parse_routes6(ROUTE6)}
    assert routes6 == {("2001:db8::/64", "eth0", "None"), ("::/0", "eth0", "2001:db8::1")}
    assert parse_local4(FIB_TRIE) == {a("198.18.0.1")}
    assert parse_local6(IF_INET6) == {a("2001:db8::2")}


@pytest.mark.parametrize(
    ("address", "attached", "special"),
    [
        ("198.18.0.0", True, "network address"),
        ("198.18.3.255", True, "broadcast address"),
        ("198.18.2.0", True, None),  # inside the /22: an ordinary host
        ("198.18.0.255", True, None),
        ("198.18.1.7", False, None),  # a more specific route through a gateway wins
        ("198.19.0.8", True, None),  # a /31 has no network or broadcast address (RFC 3021)
        ("198.19.0.9", True, None),
        ("198.19.0.10", False, None),  # default route: through a gateway
        ("2001:db8::5", True, None),
        ("2001:db8:1::5", False, None),
    ],
)
def test_attached_links_and_their_edge_addresses(
    links: Links, address: str, attached: bool, special: str | None
) -> None:
    assert (links.attached(a(address)) is not None) is attached
    assert links.special(a(address)) == special


def test_special_addresses_are_down_and_not_scanned(links: Links) -> None:
    verdicts = special_addresses([a("198.18.0.0"), a("198.18.0.5"), a("198.18.3.255")], links)
    assert verdicts[1] is None
    assert verdicts[0] is not None and verdicts[0].state is HostState.DOWN
    assert verdicts[0].note == "not scanned: network address"
    assert verdicts[2] is not None and verdicts[2].note == "not scanned: broadcast address"


def test_links_without_routes_know_nothing() -> None:
    empty = Links([])
    assert empty.attached(a("198.18.0.1")) is None and empty.special(a("198.18.0.0")) is None


macs = st.binary(min_size=6, max_size=6)
v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@given(macs, v4, v4)
def test_arp_request_layout_and_reply_parse(
    mac: bytes, source: ipaddress.IPv4Address, target: ipaddress.IPv4Address
) -> None:
    request = pk.arp_request(mac, source, target)
    assert len(request) == 28
    fields = pk.ARP.unpack(request)
    assert fields is not None
    assert (fields["oper"], fields["sha"], fields["spa"], fields["tpa"]) == (
        1,
        mac,
        source.packed,
        target.packed,
    )
    assert pk.parse_arp_reply(request) is None  # a request is no answer
    reply = request[:6] + struct.pack("!H", 2) + request[8:]
    assert pk.parse_arp_reply(reply) == pk.NeighbourAnswer(source, mac)


@given(st.binary(max_size=64))
def test_packet_parsers_take_any_bytes(data: bytes) -> None:
    pk.parse_arp_reply(data)
    pk.parse_neighbour_advertisement(data)
    pk.parse_icmp_reply(data, 4)
    pk.parse_icmp_reply(data, 6)


@given(v6, macs)
def test_neighbour_solicitation_and_advertisement(
    target: ipaddress.IPv6Address, mac: bytes
) -> None:
    ns = pk.neighbour_solicitation(target, mac)
    assert ns[0] == 135 and ns[8:24] == target.packed and ns[24:32] == b"\x01\x01" + mac
    na = bytes([136]) + ns[1:4] + struct.pack("!I", 0x60000000) + ns[8:24] + b"\x02\x01" + mac
    assert pk.parse_neighbour_advertisement(na) == pk.NeighbourAnswer(target, mac)
    assert pk.parse_neighbour_advertisement(ns) is None


def test_solicited_node_group() -> None:
    assert str(pk.solicited_node(ipaddress.IPv6Address("2001:db8::abcd:1234"))) == (
        "ff02::1:ffcd:1234"
    )


@pytest.mark.parametrize("kind", [pk.ECHO4, pk.TIMESTAMP4])
def test_icmp4_requests_carry_a_valid_checksum(kind: int) -> None:
    message = pk.icmp4(kind, 0x1234, 7)
    assert message[0] == kind
    assert checksum_fold(words(message)) == 0  # a correct checksum folds the sum to 0xffff
    answer = bytes([0 if kind == pk.ECHO4 else 14]) + message[1:]
    assert pk.parse_icmp_reply(answer, 4) == ("echo-reply" if kind == 8 else "timestamp-reply")
    assert pk.parse_icmp_reply(pk.icmp6_echo(1, 1), 6) is None  # a request, not a reply
    assert pk.parse_icmp_reply(bytes([129]) + pk.icmp6_echo(1, 1)[1:], 6) == "echo-reply"


def test_discovery_methods() -> None:
    assert parse_methods("auto") == ALL_METHODS
    assert parse_methods("ARP, icmp") == {Method.ARP, Method.ICMP}
    with pytest.raises(UsageError) as err:
        parse_methods("arp,smoke-signal")
    assert err.value.token == "smoke-signal"


def _sweep_result() -> ScanResult:
    up = HostResult(a("198.18.0.3"), None, HostState.UP, summary={"closed": 4},
                    reason=Reason.ARP_RESPONSE)  # fmt: skip
    down = [HostResult(a(f"198.18.0.{n}"), None, HostState.DOWN, reason=Reason.NO_RESPONSE)
            for n in (1, 2, 4)]  # fmt: skip
    edge = HostResult(a("198.18.0.0"), None, HostState.DOWN, reason=Reason.NO_RESPONSE,
                      error="not scanned: network address")  # fmt: skip
    late = HostResult(a("198.18.0.9"), None, HostState.UNKNOWN, reason=Reason.NO_RESPONSE,
                      error='undecided: "quoted" %s')  # fmt: skip
    stats = ScanStats(dt.datetime(2026, 12, 2, tzinfo=dt.UTC), 1.0, 4, 0, 7)
    return ScanResult((edge, *down, up, late), stats, "syn")


def test_summary_counts_up_down_and_not_scanned() -> None:
    assert host_count(_sweep_result()) == (
        "6 addresses, 1 up, 1 not scanned (network/broadcast), 1 undecided (--deadline)"
    )


def test_compact_json_keeps_every_host_and_equals_the_json_module() -> None:
    result = _sweep_result()
    text = compact_json(result)
    assert text == json.dumps(result_json(result), ensure_ascii=False, separators=(",", ":"))
    hosts = json.loads(text)["hosts"]
    assert [(h["state"], h["reason"]) for h in hosts][:2] == [
        ("down", "no-response"),
        ("down", "no-response"),
    ]
    assert hosts[0]["error"] == "not scanned: network address"


def test_table_shows_hosts_that_are_up_and_counts_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render_table(_sweep_result())
    captured = capsys.readouterr()
    text = captured.out + captured.err  # tables may move to stdout
    assert "198.18.0.3 (arp-response): 4 closed" in text
    assert "198.18.0.2" not in text and "198.18.0.0:" not in text
    assert "6 addresses, 1 up" in text
    render_table(_sweep_result(), all_hosts=True)
    captured = capsys.readouterr()
    text = captured.out + captured.err  # tables may move to stdout
    assert "198.18.0.2: host down (no-response)" in text
    assert "198.18.0.0: host down (not scanned: network address)" in text


def _neighbour_message(packed: bytes, state: int) -> bytes:
    attr = pk.RTATTR.pack({"length": pk.RTATTR.size + len(packed), "type": pk.NDA_DST}) + packed
    attr += b"\0" * (-len(attr) % 4)
    body = pk.NDMSG.pack({"family": 2 if len(packed) == 4 else 10, "pad1": 0, "pad2": 0,
                          "ifindex": 2, "state": state, "flags": 0, "type": 1}) + attr  # fmt: skip
    head = pk.NLMSG.pack({"length": pk.NLMSG.size + len(body), "type": pk.RTM_NEWNEIGH,
                          "flags": 2, "seq": 1, "pid": 0})  # fmt: skip
    return head + body


def test_neighbour_table_dump_parses_states_and_the_end() -> None:
    done = pk.NLMSG.pack({"length": 20, "type": pk.NLMSG_DONE, "flags": 2, "seq": 1, "pid": 0})
    data = (
        _neighbour_message(a("198.18.0.3").packed, 0x02)  # reachable
        + _neighbour_message(a("2001:db8::9").packed, pk.NUD_FAILED)
        + done
        + b"\0\0\0\0"
    )
    states, finished = pk.parse_neighbours(data)
    assert finished
    assert states == {a("198.18.0.3").packed: 0x02, a("2001:db8::9").packed: pk.NUD_FAILED}
    assert states[a("198.18.0.3").packed] & pk.NUD_ANSWERED
    assert pk.parse_neighbours(data[:30]) == ({}, False)  # a cut message is no answer
    request = pk.neighbour_dump_request(2, 7)
    head = pk.NLMSG.unpack(request)
    assert head is not None and head["length"] == len(request) == 28
    assert head["type"] == pk.RTM_GETNEIGH and head["seq"] == 7


@given(st.binary(max_size=80))
def test_neighbour_parser_takes_any_bytes(data: bytes) -> None:
    pk.parse_neighbours(data)
    pk.parse_rst(data)


@pytest.mark.parametrize(
    ("src", "dst"), [("198.18.0.1", "198.19.50.6"), ("2001:db8::1", "2001:db8:50::6")]
)
def test_tcp_ack_probe_checksum_and_the_rst_it_expects(src: str, dst: str) -> None:
    source, target = a(src), a(dst)
    segment = pk.tcp_ack(source, target, 40001, 80, 5, 0xDEADBEEF)
    if target.version == 4:
        pseudo = source.packed + target.packed + struct.pack("!BBH", 0, 6, len(segment))
    else:
        pseudo = source.packed + target.packed + struct.pack("!IxxxB", len(segment), 6)
    assert checksum_fold(words(pseudo + segment)) == 0
    assert pk.parse_rst(segment) is None  # an ACK is not a reset
    fields = pk.TCP.unpack(segment)
    assert fields is not None and fields["flags"] == pk.TCP_ACK and fields["ack"] == 0xDEADBEEF
    rst = pk.TCP.pack({**fields, "sport": 80, "dport": 40001, "seq": 0xDEADBEEF, "ack": 0,
                       "flags": pk.TCP_RST})  # fmt: skip
    assert pk.parse_rst(rst) == (80, 40001, 0xDEADBEEF)


def test_host_reasons_survive_nmap_xml() -> None:
    from ppsguard.report.nmapxml import render_xml
    from ppsguard.scan.nmap_import import load_nmap_xml

    xml = render_xml(_sweep_result())
    assert '<status state="up" reason="arp-response"' in xml
    loaded = load_nmap_xml(xml, "sweep.xml")
    reasons = {str(h.address): h.reason for h in loaded.hosts}
    assert reasons["198.18.0.3"] is Reason.ARP_RESPONSE
    assert reasons["198.18.0.2"] is Reason.NO_RESPONSE
