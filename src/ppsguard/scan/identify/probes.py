"""The probe table: what we send to a port to make it say what it is. Data only.

Each probe is a payload written by us from the protocol specifications (RFCs, vendor protocol
documentation). `null` sends nothing and waits for services that speak first. `{host}` in a payload
is replaced with the target address. Probes marked `intrusive` (SNMP with community "public") run
only with `intrusive=True`. `ports` lists where a probe is the first guess; `rarity` orders the
fallback list (lower runs earlier).
"""

from __future__ import annotations

from dataclasses import dataclass

from ppsguard.model.net import Protocol
from ppsguard.scan.udp_payloads import ike_main_mode, snmpv3_discovery


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    protocol: Protocol
    payload: bytes
    ports: frozenset[int] = frozenset()
    rarity: int = 5
    intrusive: bool = False
    tls: bool = False  # a TLS handshake rather than a payload
    follow_up: bool = False  # sent only after another probe named the service (FOLLOW_UPS)


def _dns_version_bind(tcp: bool) -> bytes:
    # id 0x5053, flags 0 (standard query, no recursion), one question: version.bind CH TXT
    question = b"\x07version\x04bind\x00" + b"\x00\x10" + b"\x00\x03"
    message = b"\x50\x53\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + question
    return (len(message).to_bytes(2, "big") + message) if tcp else message


def _mongodb_buildinfo() -> bytes:
    # OP_MSG (opcode 2013), flags 0, section kind 0 with {buildinfo: 1, $db: "admin"}
    body = b"\x10buildinfo\x00" + (1).to_bytes(4, "little")
    body += b"\x02$db\x00" + (6).to_bytes(4, "little") + b"admin\x00"
    document = (len(body) + 5).to_bytes(4, "little") + body + b"\x00"
    message = (0).to_bytes(4, "little") + b"\x00" + document
    header = (16 + len(message)).to_bytes(4, "little") + (0x5053).to_bytes(4, "little")
    header += (0).to_bytes(4, "little") + (2013).to_bytes(4, "little")
    return header + message


def _postgres_startup() -> bytes:
    params = b"user\x00ppsguard\x00database\x00ppsguard\x00\x00"
    body = (196608).to_bytes(4, "big") + params  # protocol 3.0
    return (len(body) + 4).to_bytes(4, "big") + body


# SNMPv1 GetRequest sysDescr.0 (1.3.6.1.2.1.1.1.0), community "public", request id 0x5053
def _snmp_get_sysdescr() -> bytes:
    oid = bytes.fromhex("2b06010201010100")  # 1.3.6.1.2.1.1.1.0
    varbind = b"\x06" + bytes([len(oid)]) + oid + b"\x05\x00"
    varbind = b"\x30" + bytes([len(varbind)]) + varbind
    varbinds = b"\x30" + bytes([len(varbind)]) + varbind
    pdu = b"\x02\x02\x50\x53" + b"\x02\x01\x00" + b"\x02\x01\x00" + varbinds
    pdu = b"\xa0" + bytes([len(pdu)]) + pdu
    body = b"\x02\x01\x00" + b"\x04\x06public" + pdu
    return b"\x30" + bytes([len(body)]) + body


def _ber(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    return bytes([tag, 0x82]) + len(body).to_bytes(2, "big") + body


def _ldap_rootdse() -> bytes:
    # SearchRequest (RFC 4511): base "", scope base, no alias deref, no limits, types and values,
    # filter (objectClass=*), attributes vendorName, vendorVersion, objectClass
    attrs = b"".join(_ber(0x04, a) for a in (b"vendorName", b"vendorVersion", b"objectClass"))
    request = (
        _ber(0x04, b"")
        + b"\x0a\x01\x00\x0a\x01\x00\x02\x01\x00\x02\x01\x00\x01\x01\x00"
        + _ber(0x87, b"objectClass")
        + _ber(0x30, attrs)
    )
    return _ber(0x30, b"\x02\x01\x01" + _ber(0x63, request))


def _mqtt_connect_and_subscribe() -> bytes:
    # MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s, client id "ppsguard"), then a
    # SUBSCRIBE to $SYS/broker/version (read-only; brokers that publish it name themselves)
    def string(text: bytes) -> bytes:
        return len(text).to_bytes(2, "big") + text

    connect = string(b"MQTT") + b"\x04\x02\x00\x0a" + string(b"ppsguard")
    topic = string(b"$SYS/broker/version") + b"\x00"
    subscribe = b"\x00\x01" + topic
    return b"\x10" + bytes([len(connect)]) + connect + b"\x82" + bytes([len(subscribe)]) + subscribe


def _kafka_api_versions() -> bytes:
    # ApiVersions (key 18) v0, correlation id 0x5053, client id "ppsguard"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (0x5053).to_bytes(4, "big")
    body += (8).to_bytes(2, "big") + b"ppsguard"
    return len(body).to_bytes(4, "big") + body


def _zabbix_agent_version() -> bytes:
    key = b"agent.version"
    return b"ZBXD\x01" + len(key).to_bytes(8, "little") + key


def _openvpn_reset(tcp: bool) -> bytes:
    # P_CONTROL_HARD_RESET_CLIENT_V2, key id 0, our session id, no acks, packet id 0
    packet = bytes([7 << 3]) + b"PPSGUARD" + b"\x00" + (0).to_bytes(4, "big")
    return (len(packet).to_bytes(2, "big") + packet) if tcp else packet


def _smb_negotiate() -> bytes:
    # NetBIOS session header + SMB1 negotiate offering "NT LM 0.12", "SMB 2.002", "SMB 2.???"
    dialects = b"\x02NT LM 0.12\x00\x02SMB 2.002\x00\x02SMB 2.???\x00"
    smb = (
        b"\xffSMB\x72"
        + b"\x00" * 4
        + b"\x18\x01\x28"
        + b"\x00" * 12
        + b"\x00\x00\xff\xfe\x00\x00\x00\x00"
        + b"\x00"
        + len(dialects).to_bytes(2, "little")
        + dialects
    )
    return len(smb).to_bytes(4, "big") + smb


_SMB_NEGOTIATE = _smb_negotiate()
_RDP_X224 = bytes.fromhex("030000130ee000000000000100080003000000")

_NTP_CLIENT = b"\xe3" + b"\x00" * 47  # LI 3, version 4, mode 3 (client)

TCP = Protocol.TCP
UDP = Protocol.UDP

PROBES: tuple[Probe, ...] = (
    Probe("null", TCP, b"", rarity=0),
    Probe(
        "http-get",
        TCP,
        b"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ppsguard\r\nAccept: */*\r\n\r\n",
        ports=frozenset(
            {
                80,
                81,
                591,
                2375,
                3000,
                5000,
                8000,
                8008,
                8080,
                8081,
                8888,
                9090,
                9100,
                9200,
                10255,
            }
        ),
        rarity=1,
    ),
    Probe(
        "tls",
        TCP,
        b"",
        ports=frozenset(
            {
                443,
                465,
                636,
                853,
                989,
                990,
                992,
                993,
                995,
                2376,
                2379,
                2380,
                5986,
                6443,
                8443,
                9443,
                10250,
            }
        ),
        rarity=1,
        tls=True,
    ),
    Probe("redis-info", TCP, b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", frozenset({6379}), 2),
    Probe("memcached-version", TCP, b"version\r\n", frozenset({11211}), 2),
    Probe("postgresql-startup", TCP, _postgres_startup(), frozenset({5432}), 3),
    Probe("mongodb-buildinfo", TCP, _mongodb_buildinfo(), frozenset({27017, 27018}), 3),
    Probe("dns-version-tcp", TCP, _dns_version_bind(tcp=True), frozenset({53}), 4),
    Probe("rdp-x224", TCP, _RDP_X224, frozenset({3389}), 4),
    Probe("smb-negotiate", TCP, _SMB_NEGOTIATE, frozenset({139, 445}), 4),
    Probe("ldap-rootdse", TCP, _ldap_rootdse(), frozenset({389, 3268}), 4),
    Probe("mqtt-connect", TCP, _mqtt_connect_and_subscribe(), frozenset({1883}), 4),
    Probe("amqp-header", TCP, b"AMQP\x00\x00\x09\x01", frozenset({5672}), 5),
    Probe(
        "stomp-connect",
        TCP,
        b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:{host}\n\n\x00",
        frozenset({61613}),
        5,
    ),
    Probe("kafka-apiversions", TCP, _kafka_api_versions(), frozenset({9092}), 5),
    Probe("x11-setup", TCP, b"l\x00\x0b\x00" + b"\x00" * 8, frozenset(range(6000, 6008)), 6),
    Probe("zabbix-version", TCP, _zabbix_agent_version(), frozenset({10050}), 6),
    Probe("openvpn-tcp", TCP, _openvpn_reset(tcp=True), frozenset({1194}), 6),
    Probe(
        "http-version",
        TCP,
        b"GET /version HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ppsguard\r\nAccept: */*\r\n\r\n",
        rarity=9,
        follow_up=True,
    ),
    Probe(
        "http-metrics",
        TCP,
        b"GET /metrics HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ppsguard\r\n"
        b"Accept: text/plain\r\n\r\n",
        rarity=9,
        follow_up=True,
    ),
    Probe("dns-version-udp", UDP, _dns_version_bind(tcp=False), frozenset({53, 5353}), 1),
    Probe("ntp-client", UDP, _NTP_CLIENT, frozenset({123}), 1),
    Probe("snmp-sysdescr", UDP, _snmp_get_sysdescr(), frozenset({161}), 1, intrusive=True),
    Probe("snmpv3-discovery", UDP, snmpv3_discovery(), frozenset({161}), 1),
    Probe("openvpn-udp", UDP, _openvpn_reset(tcp=False), frozenset({1194}), 2),
    Probe("ike-main-mode", UDP, ike_main_mode(), frozenset({500, 4500}), 2),
)

BY_NAME: dict[str, Probe] = {probe.name: probe for probe in PROBES}
# service named by a first answer -> the probe that asks it its release (read-only requests)
FOLLOW_UPS: dict[str, str] = {"etcd": "http-version", "prometheus": "http-metrics"}


def render(probe: Probe, host: str) -> bytes:
    """The bytes to send to `host` (the `{host}` placeholder filled in)."""
    return probe.payload.replace(b"{host}", host.encode("ascii"))


def suggested(port: int, protocol: Protocol, *, intrusive: bool) -> Probe | None:
    """The probe the port number suggests, if any."""
    for probe in PROBES:
        if (
            probe.protocol is protocol
            and port in probe.ports
            and not probe.follow_up
            and (intrusive or not probe.intrusive)
        ):
            return probe
    return None


def fallbacks(protocol: Protocol, *, intrusive: bool) -> list[Probe]:
    """All payload probes for `protocol`, most common first (the null probe excluded)."""
    chosen = [
        p
        for p in PROBES
        if p.protocol is protocol
        and p.name != "null"
        and not p.follow_up
        and (intrusive or not p.intrusive)
    ]
    return sorted(chosen, key=lambda p: p.rarity)
