"""The fuzzing harness (#18): every parser of outside input, fed random and mutated input, may
only return a value or raise the project's InputError — never another exception, never hang.

Parsers covered: the registry YAML (mutations of every example registry), nmap XML (mutations of
a real-shaped -oX document), scope/target lists, port specs (`-p`, registry port text, `pps port`
queries), netlink messages (sock_diag dumps, NFLOG records, conntrack events), service banners
(every handshake parser and the signature matcher), the SYN engine's raw replies (IPv4/TCP, ICMP,
ICMPv6), `pps flows` evidence (pcap, pcapng, Zeek conn.log in TSV and JSON, Suricata EVE, VPC
flow logs, firewall log lines, gzip'd or not, through the same `read_flows` the command uses),
NetFlow v5/v9/IPFIX export datagrams (mutated templates and data, one decoder across them), and
the other text the machine hands us (/etc/services, /proc/net tables, cgroups,
`nft -j list ruleset`, `ip -j addr`, the ephemeral port range).

Normal runs (CI) try a few dozen inputs per parser; `make fuzz` sets HYPOTHESIS_PROFILE=fuzz
(registered in tests/conftest.py) and tries thousands. Each call runs under an alarm: a parser
still busy after HANG_SECONDS fails the test as a hang. atheris is left out: the harness is
plain hypothesis so that it runs inside the normal test suite with no extra dependency; an
atheris entry point could reuse `holds()` over the same parsers.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import ipaddress
import os
import signal
import socket
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsguard.audit.observe import parse_ip_addr_json
from ppsguard.errors import InputError, RuntimeFailure
from ppsguard.firewall.live import parse_ruleset
from ppsguard.flows.capture import read_capture
from ppsguard.flows.decode import decode
from ppsguard.flows.inputs import read_flows
from ppsguard.flows.netflow import NetflowDecoder
from ppsguard.flows.records import zeek_document
from ppsguard.flows.stitch import Stitcher
from ppsguard.inventory import sockdiag
from ppsguard.inventory.containers import parse_container
from ppsguard.inventory.procfs import parse_cgroup, parse_proc_net
from ppsguard.inventory.raw import AddressCache, RawSocket
from ppsguard.knowledge.query import resolve_query
from ppsguard.knowledge.ranges import parse_local_port_range
from ppsguard.knowledge.services import parse_etc_services
from ppsguard.model.net import Protocol
from ppsguard.model.registry import SourceLocation
from ppsguard.monitor import ctnetlink, nflog_wire
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import parse_registry
from ppsguard.registry.naming import parse_port_text
from ppsguard.scan.engines.packets import SynBuilder, parse_icmp4, parse_icmp6, parse_ipv4_tcp
from ppsguard.scan.identify import handshakes, signatures
from ppsguard.scan.identify.classify import interpret
from ppsguard.scan.identify.probes import BY_NAME
from ppsguard.scan.nmap_import import load_nmap_xml
from ppsguard.scan.ports import parse_ports
from ppsguard.scan.targets import parse_networks, parse_targets, split_tokens
from ppsguard.testing.exports import FIELDS, data_record, data_set, ipfix, template_set, v5, v9
from ppsguard.testing.packets import SYN, ethernet, ipv4, tcp, udp, write_pcap, write_pcapng

ROOT = Path(__file__).resolve().parents[2]
HANG_SECONDS = 10
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
BUDGET = settings(
    max_examples=settings.default.max_examples if FUZZ else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = [p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))]
NMAP_XML = (ROOT / "tests" / "samples" / "services" / "nmap-sv.xml").read_text()
AT = SourceLocation("fuzz", 1, 1)


class Hang(Exception):
    """A parser ran longer than HANG_SECONDS on one input."""


@contextlib.contextmanager
def alarm(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def expired(_signum: int, _frame: object) -> None:
        raise Hang(f"parser still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def holds(parse: Callable[..., Any], *args: Any, allowed: tuple[type[Exception], ...] = ()) -> Any:
    """Call a parser: a value or InputError (with a message) is fine; anything else fails."""
    with alarm():
        try:
            return parse(*args)
        except InputError as exc:
            assert str(exc).strip()
            return None
        except allowed:
            return None


@st.composite
def mutated(draw: st.DrawFn, samples: list[str]) -> str:
    """A sample with a few random edits: deletions, insertions, replacements, duplications."""
    text = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 6))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        end = min(len(text), at + draw(st.integers(0, 40)))
        operation = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(st.text(max_size=12))
        if operation == "delete":
            text = text[:at] + text[end:]
        elif operation == "insert":
            text = text[:at] + piece + text[at:]
        elif operation == "replace":
            text = text[:at] + piece + text[end:]
        else:
            text = text[:at] + text[at:end] * draw(st.integers(2, 30)) + text[end:]
    return text


def _load_registry(text: str) -> None:
    registry = parse_registry(text, "fuzz.yaml")
    for host in registry.hosts:
        compile_host_policy(registry, host.name)


@BUDGET
@given(mutated(EXAMPLES))
def test_registry_yaml(text: str) -> None:
    holds(_load_registry, text)


NMAP_TOKENS = st.sampled_from(
    ['"99999999999999999999"', '"-1"', '"٢٢"', '"nan"', '"1e309"', '""', "&amp;", "<![CDATA[x]]>"]
)


@BUDGET
@given(mutated([NMAP_XML]), NMAP_TOKENS, st.integers(0, len(NMAP_XML)))
def test_nmap_xml(text: str, token: str, at: int) -> None:
    holds(load_nmap_xml, text, "fuzz.xml")
    holds(load_nmap_xml, NMAP_XML[:at] + token + NMAP_XML[at:], "fuzz.xml")


TARGET_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            ["198.18.0.1", "198.18.0.0/30", "198.18.0.1-3", "2001:db8::1", "2001:db8::/126",
             "lab.test", "-", "/", "1-", "::ffff:1.2.3.4", "fe80::1%eth0", "198.18.0.٣",
             "0.0.0.0/0", "198.18.0.5-2", ",", "#x"]
        ),
        max_size=6,
    ).map(" ".join),
)  # fmt: skip


@BUDGET
@given(TARGET_TEXT)
def test_scope_and_target_lists(text: str) -> None:
    tokens = holds(split_tokens, text) or []
    holds(lambda: parse_targets(tokens, max_hosts=4096))
    holds(parse_networks, tokens)


PORT_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[TU:0-9,\-/a-z+٢２ ]{0,24}\Z"),
)


@BUDGET
@given(PORT_TEXT)
def test_port_specs(text: str) -> None:
    holds(parse_ports, text)
    holds(parse_port_text, text, AT)
    holds(resolve_query, text)


def _sockdiag_message(body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), 20, 2, 1, 0) + body


NETLINK = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=72, max_size=200).map(_sockdiag_message),
    st.tuples(st.binary(max_size=120), st.integers(0, 0xFFFFFFFF)).map(
        lambda pair: struct.pack("=IHHII", pair[1], 20, 2, 1, 0) + pair[0]
    ),
)


@BUDGET
@given(NETLINK, st.sampled_from([Protocol.TCP, Protocol.UDP]))
def test_netlink_sock_diag(data: bytes, protocol: Protocol) -> None:
    out: list[RawSocket] = []
    # an NLMSG_ERROR from the kernel is a RuntimeFailure by design (permission, no such family)
    holds(sockdiag.parse_messages, data, protocol, AddressCache(), out, allowed=(RuntimeFailure,))


def _nflog_message(attributes: bytes) -> bytes:
    body = struct.pack("=BBH", 2, 0, 0) + attributes
    return struct.pack("=IHHII", 16 + len(body), (4 << 8) | 0, 0, 0, 0) + body


@BUDGET
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=200).map(_nflog_message)))
def test_netlink_nflog(data: bytes) -> None:
    holds(nflog_wire.parse_messages, data)


def _conntrack_message(body: bytes, event: int) -> bytes:
    payload = struct.pack("=BBH", 2, 0, 0) + body
    return struct.pack("=IHHII", 16 + len(payload), (1 << 8) | event, 0x400, 0, 0) + payload


@BUDGET
@given(
    st.one_of(
        st.binary(max_size=300),
        st.tuples(st.binary(max_size=200), st.sampled_from([0, 2])).map(
            lambda pair: _conntrack_message(*pair)
        ),
    ),
    st.booleans(),
)
def test_netlink_conntrack(data: bytes, dump: bool) -> None:
    holds(lambda: ctnetlink.parse_messages(data, dump=dump), allowed=(RuntimeFailure,))


BANNER = st.one_of(
    st.binary(max_size=600),
    st.sampled_from(
        [b"SSH-2.0-", b"HTTP/1.1 200 OK\r\n", b"+OK ", b"220 ", b"\x16\x03\x01", b"*1\r\n"]
    ).flatmap(lambda head: st.binary(max_size=300).map(lambda tail: head + tail)),
)


@BUDGET
@given(st.sampled_from(sorted(BY_NAME)), BANNER, st.booleans())
def test_service_banners(probe: str, data: bytes, tls: bool) -> None:
    holds(handshakes.parse, probe, data)
    holds(signatures.match, probe, data)
    holds(lambda: interpret(probe, data, tls=tls, payload=data[:8]))


def _ipv4(body: bytes, protocol: int) -> bytes:
    total = 20 + len(body)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, protocol, 0, bytes(4), bytes(4))
    return header + body


RAW_REPLY = st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=60).map(lambda b: _ipv4(b, 6)),
    st.binary(max_size=80).map(lambda b: _ipv4(b, 1)),
)


@BUDGET
@given(RAW_REPLY)
def test_raw_replies_to_the_syn_engine(packet: bytes) -> None:
    v4 = SynBuilder(b"k" * 16, ipaddress.IPv4Address("198.18.0.1"), socket.AF_INET, 40000)
    v6 = SynBuilder(b"k" * 16, ipaddress.IPv6Address("2001:db8::1"), socket.AF_INET6, 40000)
    holds(parse_ipv4_tcp, packet, v4)
    holds(parse_icmp4, packet, v4)
    holds(parse_icmp6, packet, v6)


def _evidence_samples() -> list[bytes]:
    frames = [
        (1.0, ethernet(ipv4(tcp(40000, 22, SYN, seq=1), "198.18.0.10", "198.18.0.20"))),
        (1.5, ethernet(ipv4(udp(5353, 53, b"q"), "198.18.0.10", "198.18.0.20"))),
    ]
    with tempfile.TemporaryDirectory() as folder:
        pcap, pcapng = Path(folder) / "a.pcap", Path(folder) / "a.pcapng"
        write_pcap(pcap, frames)
        write_pcapng(pcapng, frames)
        zeek = zeek_document(list(read_flows(pcap))).encode()
        samples = [pcap.read_bytes(), pcapng.read_bytes(), zeek]
    samples.append(
        b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        b"start end action log-status\n2 123 eni-1 198.18.0.5 198.18.0.9 49152 443 6 10 840 100 "
        b"160 ACCEPT OK\n2 123 eni-1 198.18.0.9 198.18.0.5 443 49152 6 8 4000 100 160 ACCEPT OK\n"
    )
    samples.append(
        b"Dec  2 07:14:48 fw kernel: [ 12.3] pps:mysql IN=eth0 OUT= SRC=198.18.0.50 DST=198.18.0.1 "
        b"LEN=60 TOS=0x00 PROTO=TCP SPT=41234 DPT=3306 WINDOW=64240 SYN URGP=0\n"
    )
    samples.append(  # Suricata EVE: a flow event and a one-way netflow event
        b'{"event_type": "flow", "src_ip": "198.18.0.5", "src_port": 40000, "dest_ip": '
        b'"198.18.0.9", "dest_port": 443, "proto": "TCP", "app_proto": "tls", "flow": '
        b'{"pkts_toserver": 6, "pkts_toclient": 5, "bytes_toserver": 700, "bytes_toclient": '
        b'3000, "start": "2026-12-02T07:00:00.000000+0000", "end": '
        b'"2026-12-02T07:00:01.500000+0000", "state": "closed", "action": "allowed"}}\n'
        b'{"event_type": "netflow", "src_ip": "198.18.0.7", "src_port": 53000, "dest_ip": '
        b'"198.18.0.9", "dest_port": 53, "proto": "UDP", "netflow": {"pkts": 1, "bytes": 80, '
        b'"start": "2026-12-02T07:00:00.000000+0000", "end": "2026-12-02T07:00:00.100000+0000"}}\n'
    )
    samples.append(  # Zeek conn.log as JSON lines
        b'{"ts": 1.0, "uid": "CabcdefghijklmnopQ", "id.orig_h": "198.18.0.10", "id.orig_p": '
        b'40000, "id.resp_h": "198.18.0.20", "id.resp_p": 22, "proto": "tcp", "duration": 0.5, '
        b'"orig_bytes": 10, "resp_bytes": 20, "conn_state": "SF", "history": "ShADadFf", '
        b'"orig_pkts": 5, "resp_pkts": 4, "tunnel_parents": []}\n'
    )
    return samples


EVIDENCE = _evidence_samples()


@st.composite
def mutated_bytes(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if operation == "flip":
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


@BUDGET
@given(
    st.one_of(mutated_bytes(EVIDENCE), st.binary(max_size=300)),
    st.sampled_from(["auto", "pcap", "zeek", "eve", "vpc", "netlog", "netflow"]),
    st.booleans(),
)
def test_flows_evidence(data: bytes, fmt: str, packed: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "evidence"
        path.write_bytes(gzip.compress(data) if packed else data)
        holds(lambda: list(read_flows(path, fmt)))
        holds(lambda: list(read_flows(path, fmt, skip_bad=True)))
    holds(lambda: list(read_capture(io.BytesIO(data), "fuzz")))


_A, _B = ipaddress.ip_address("198.18.0.10").packed, ipaddress.ip_address("198.18.0.20").packed
EXPORTS = [
    v5(1, [(_A, _B, 40000, 80, 3, 180, 0x1B), (_B, _A, 80, 40000, 2, 120, 0x1B)], 0x4000 | 10),
    ipfix(
        0, 7, template_set(2, 300, FIELDS), data_set(300, data_record(_A, _B, 40000, 443, 10, 900))
    ),
    v9(1, template_set(0, 260, FIELDS[:8]), data_set(260, data_record(_A, _B, 1, 53, 1, 60)[:-16])),
]


@BUDGET
@given(st.lists(st.one_of(mutated_bytes(EXPORTS), st.binary(max_size=120)), min_size=1, max_size=4))
def test_netflow_exports(datagrams: list[bytes]) -> None:
    """Export datagrams as `pps flows collect` receives them from the network: one decoder for
    all (a mutated template may meet the data of the next), the records stitched into flows."""
    decoder, stitcher = NetflowDecoder(), Stitcher("netflow:fuzz")
    for datagram in [*EXPORTS[1:2], *datagrams]:
        holds(lambda d=datagram: [f for r in decoder.decode(d, "e", 0.0) for f in stitcher.add(r)])
    holds(lambda: list(stitcher.flush()))


@BUDGET
@given(st.binary(max_size=200), st.sampled_from([0, 1, 101, 113, 228, 229, 276, 12345]))
def test_flows_packet_decoder(data: bytes, linktype: int) -> None:
    holds(decode, data, linktype, 0.0)


MACHINE_TEXT = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


@BUDGET
@given(MACHINE_TEXT)
def test_machine_text(text: str) -> None:
    holds(parse_etc_services, text)
    holds(parse_proc_net, text, Protocol.TCP)
    holds(parse_cgroup, text)
    holds(parse_container, text)
    holds(parse_ruleset, text)
    holds(parse_ip_addr_json, text)
    holds(parse_local_port_range, text)


def test_hang_guard_catches_a_hang() -> None:
    with pytest.raises(Hang), alarm(1):
        signal.pause()
