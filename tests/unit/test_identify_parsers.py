"""Pure parts of service identification: escaping, handshake parsers, signatures, mismatch, TLS."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.model.net import Protocol
from ppsguard.model.scan import Mismatch
from ppsguard.scan.identify import classify, handshakes, probes, signatures
from ppsguard.scan.identify.escape import escape_bytes
from ppsguard.scan.identify.tls import describe_certificate
from ppsguard.testing.certificates import build_certificate


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"SSH-2.0-x\r\n", "SSH-2.0-x\\r\\n"),
        (b"\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        (b"\x1b[2J", "\\x1b[2J"),
        (b"a\\b", "a\\\\b"),
        (b"\xc3\xa9\x9b", "\\xc3\\xa9\\x9b"),
    ],
)
def test_escape_bytes(raw: bytes, shown: str) -> None:
    assert escape_bytes(raw) == shown


@given(st.binary(max_size=5000), st.integers(min_value=8, max_value=400))
def test_escaped_text_is_printable_and_capped(raw: bytes, limit: int) -> None:
    text = escape_bytes(raw, limit)
    assert all(0x20 <= ord(c) < 0x7F for c in text)
    assert len(text) <= limit + 40


@given(st.sampled_from(sorted(probes.BY_NAME)), st.binary(max_size=2000))
def test_parsers_and_signatures_never_raise(probe: str, raw: bytes) -> None:
    found = classify.interpret(probe, raw)
    if found is not None:
        for value in (found.product, found.version, found.extra):
            assert value is None or all(0x20 <= ord(c) < 0x7F for c in value)


@given(st.binary(max_size=300))
def test_prefixed_garbage_never_raises(tail: bytes) -> None:
    for prefix in (
        b"SSH-2.0-",
        b"HTTP/1.1 200 ",
        b"\x4a\x00\x00\x00\x0a",
        b"E\x00\x00\x00\x10S",
        b"PS\x84\x80",
    ):
        classify.interpret("null", prefix + tail)
        classify.interpret("http-get", prefix + tail)
        handshakes.dns(prefix + tail)
        handshakes.mongodb(prefix + tail)


@pytest.mark.parametrize(
    ("expected", "found", "result"),
    [
        ("https", "ssh", Mismatch("https", "ssh")),
        ("https", "http", None),
        ("http-alt", "http", None),
        ("http", "https", None),
        ("https", "tls", None),
        ("smtp", "http", Mismatch("smtp", "http")),
        ("domain", None, None),  # "unknown" is never a mismatch
        ("dns", None, None),
        ("rsync", None, None),
        ("ssh", "smtp", Mismatch("ssh", "smtp")),  # SMTP on 22
        ("redis", "http", Mismatch("redis", "http")),  # HTTP on 6379
        ("jupyter", "http", None),  # 8888
        ("portainer", "https", None),  # 9443
        ("iprop", "ftp", None),  # 2121: a port-table name we cannot identify claims nothing
        ("http-alt", "http-proxy", None),
        ("imaps", "imap", None),
        ("submissions", "smtp", None),
        ("ssh", "tls", None),  # a bare TLS wrapper could carry anything
        ("dns", "domain", None),
        ("kubernetes-api", "kubernetes", None),
        ("node-exporter", "prometheus", None),
        ("smb", "microsoft-ds", None),
        ("domain", "dns", None),
        ("docker", "docker", None),
        ("http-alt", "elasticsearch", None),
        (None, "ssh", None),
        ("ms-wbt-server", "rdp", None),
    ],
)
def test_mismatch(expected: str | None, found: str | None, result: Mismatch | None) -> None:
    assert classify.mismatch(expected, found) == result


def test_suggested_probe_follows_port_and_respects_intrusive() -> None:
    assert probes.suggested(443, Protocol.TCP, intrusive=False).name == "tls"  # type: ignore[union-attr]
    assert probes.suggested(6379, Protocol.TCP, intrusive=False).name == "redis-info"  # type: ignore[union-attr]
    # without --intrusive SNMP is asked by the credential-free SNMPv3 discovery
    assert probes.suggested(161, Protocol.UDP, intrusive=False).name == "snmpv3-discovery"  # type: ignore[union-attr]
    assert probes.suggested(161, Protocol.UDP, intrusive=True).name == "snmp-sysdescr"  # type: ignore[union-attr]
    assert all(not p.intrusive for p in probes.fallbacks(Protocol.UDP, intrusive=False))


def test_follow_up_probes_run_only_after_their_service_is_named() -> None:
    follow_ups = {probes.BY_NAME[name] for name in probes.FOLLOW_UPS.values()}
    assert follow_ups and all(p.follow_up for p in follow_ups)
    listed = probes.fallbacks(Protocol.TCP, intrusive=True)
    assert not follow_ups & set(listed)
    assert probes.suggested(2379, Protocol.TCP, intrusive=True) not in follow_ups
    # etcd named from its 404 page, then its release from GET /version
    version = classify.interpret(
        "http-version",
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
        b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}',
    )
    assert version is not None and (version.name, version.version) == ("etcd", "3.4.23")


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("[[signature]]\nservice = 'x'\npattern = 'a'\n", "'id'"),
        ("[[signature]]\nid = 'x'\nservice = 'x'\npattern = '('\n", None),
        ("[[signature\n", None),
    ],
)
def test_bad_signature_files_name_the_file(text: str, token: str | None) -> None:
    with pytest.raises(InputError) as caught:
        signatures.parse_signatures(text, "bad.toml")
    assert "bad.toml" in str(caught.value)
    if token:
        assert token in str(caught.value)


def test_signature_templates_fill_groups_and_escape() -> None:
    [sig] = signatures.parse_signatures(
        "[[signature]]\nid='t'\nservice='x'\npattern='^X (\\S+) (\\S+)'\nproduct='P $1'\n"
        "version='$2'\ncpe=['cpe:/a:x:x:$2']\n",
        "t.toml",
    )
    found = signatures.match("null", b"X a\x1bb 1.0", [sig])
    assert found is not None
    assert (found.product, found.version, found.cpe) == ("P a\\x1bb", "1.0", ("cpe:/a:x:x:1.0",))


def _certificate(*, days_ago_start: int, days_ago_end: int, issuer_cn: str = "self.test") -> bytes:
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    certificate, _key = build_certificate(
        common_name="self.test",
        issuer_cn=issuer_cn,
        not_before=now - dt.timedelta(days=days_ago_start),
        not_after=now - dt.timedelta(days=days_ago_end),
        sans=["self.test", "\x1b[2J.test"],
        serial=7,
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def test_describe_certificate_expired_self_signed() -> None:
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    info = describe_certificate(
        _certificate(days_ago_start=30, days_ago_end=1), "TLSv1.3", "X", now
    )
    assert (info.subject, info.issuer, info.self_signed, info.expired) == (
        "CN=self.test",
        "CN=self.test",
        True,
        True,
    )
    assert info.sans == ("self.test", "\\x1b[2J.test")


def test_describe_certificate_valid_and_issued_by_other() -> None:
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    der = _certificate(days_ago_start=1, days_ago_end=-30, issuer_cn="Lab CA")
    info = describe_certificate(der, "TLSv1.2", "ECDHE", now, starttls="smtp")
    assert (info.self_signed, info.expired, info.starttls) == (False, False, "smtp")


@given(st.binary(max_size=600))
def test_describe_certificate_garbage(der: bytes) -> None:
    info = describe_certificate(der, "TLSv1.3", "X", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert info.version == "TLSv1.3"


@pytest.mark.parametrize(
    ("payload", "data", "echo"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", b"GET /", True),  # a partial reflection is still an echo
        (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\n", False),
        (b"", b"SSH-2.0-OpenSSH_9.2\r\n", False),  # the passive read sends nothing
        (b"\x00\x01", b"\x00\x01", False),  # too short to tell
    ],
)
def test_a_reflected_probe_is_an_echo_service(payload, data, echo):
    assert classify.is_echo(payload, data) is echo
    service = classify.interpret("smb-negotiate", data, payload=payload)
    if echo:
        assert service is not None and service.name == "echo"
    else:
        assert service is None or service.name != "echo"


def test_discovery_sends_no_snmp_community_without_intrusive() -> None:
    from ppsguard.scan.udp_payloads import payload_for

    assert b"public" not in payload_for(161)
    assert payload_for(161)[4:5] == b"\x03"  # SNMP version 3 (engine-ID discovery)
    assert b"public" in payload_for(161, intrusive=True)


def test_snmpv3_report_names_net_snmp_and_extra_is_not_repeated() -> None:
    def ber(tag: int, value: bytes) -> bytes:
        return bytes([tag, len(value)]) + value

    # a Report from net-snmp: engine ID 80001f88 80 ..., boots 3, engine time 1234 s
    engine = bytes.fromhex("80001f8880a1b2c3d4e5f60708")
    usm = ber(
        0x30, ber(0x04, engine) + ber(0x02, b"\x03") + ber(0x02, b"\x04\xd2") + b"\x04\x00" * 3
    )
    report = ber(0xA8, ber(0x02, b"PT") + b"\x02\x01\x00" * 2 + ber(0x30, b""))
    scoped = ber(0x30, ber(0x04, engine) + b"\x04\x00" + report)
    glob = ber(0x30, bytes.fromhex("02025053020300ffe3040100020103"))
    body = b"\x02\x01\x03" + glob + ber(0x04, usm) + scoped
    found = classify.interpret("snmpv3-discovery", bytes([0x30, len(body)]) + body)
    assert found is not None and found.name == "snmp" and found.product == "Net-SNMP"
    assert found.extra is not None and "boots 3" in found.extra and "up 1234 s" in found.extra


def test_answered_open_filtered_udp_becomes_open_and_silent_ones_drop() -> None:
    from ppsguard.model.scan import Confidence, PortResult, PortState, Reason, ServiceInfo
    from ppsguard.scan.identify.ports import asks, settle

    silent = PortResult(5533, Protocol.UDP, PortState.OPEN_FILTERED, Reason.NO_RESPONSE)
    assert asks(silent)
    assert not asks(PortResult(22, Protocol.TCP, PortState.FILTERED, Reason.NO_RESPONSE))
    dns = ServiceInfo(name="dns", confidence=Confidence.CONFIRMED)
    settled = settle(silent, dns, all_states=False)
    assert settled is not None and settled.state is PortState.OPEN
    assert settled.reason is Reason.UDP_RESPONSE and settled.service == dns
    guess = ServiceInfo(name=None, confidence=Confidence.GUESSED)
    assert settle(silent, guess, all_states=False) is None
    assert settle(silent, guess, all_states=True) == silent


def test_new_parsers_never_raise_on_truncated_or_random_bytes() -> None:
    import random

    from ppsguard.scan.identify import handshakes_more, signatures

    rng = random.Random(20)
    samples = [s.response for sig in signatures.builtin_signatures() for s in sig.samples]
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(80))) for _ in range(300)]
    for sample in samples:
        blobs.extend(sample[:cut] for cut in range(0, len(sample), max(1, len(sample) // 12)))
    parsers = [
        handshakes_more.rsync, handshakes_more.mqtt, handshakes_more.amqp, handshakes_more.stomp,
        handshakes_more.nats, handshakes_more.kafka, handshakes_more.x11, handshakes_more.zabbix,
        handshakes_more.openvpn, handshakes_more.ike, handshakes_more.ldap_rootdse,
    ]  # fmt: skip
    for blob in blobs:
        for parser in parsers:
            parser(blob)  # must not raise
        for probe in ("snmpv3-discovery", "mqtt-connect", "amqp-header", "x11-setup"):
            classify.interpret(probe, blob)  # parse() guards the BER walkers
