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


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    protocol: Protocol
    payload: bytes
    ports: frozenset[int] = frozenset()
    rarity: int = 5
    intrusive: bool = False
    tls: bool = False  # a TLS handshake rather than a payload


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


def _ldap_rootdse() -> bytes:
    # SearchRequest: base "", scope base, filter (objectClass=*), attrs vendorName, vendorVersion
    attrs = b"\x04\x0avendorName" + b"\x04\x0dvendorVersion"
    request = (
        b"\x04\x00"
        + b"\x0a\x01\x00"
        + b"\x0a\x01\x00"
        + b"\x02\x01\x00"
        + b"\x02\x01\x00"
        + b"\x01\x01\x00"
        + b"\x87\x0bobjectClass"
        + b"\x30"
        + bytes([len(attrs)])
        + attrs
    )
    request = b"\x63" + bytes([len(request)]) + request
    body = b"\x02\x01\x01" + request
    return b"\x30" + bytes([len(body)]) + body


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
    Probe("dns-version-udp", UDP, _dns_version_bind(tcp=False), frozenset({53, 5353}), 1),
    Probe("ntp-client", UDP, _NTP_CLIENT, frozenset({123}), 1),
    Probe("snmp-sysdescr", UDP, _snmp_get_sysdescr(), frozenset({161}), 1, intrusive=True),
)

BY_NAME: dict[str, Probe] = {probe.name: probe for probe in PROBES}


def render(probe: Probe, host: str) -> bytes:
    """The bytes to send to `host` (the `{host}` placeholder filled in)."""
    return probe.payload.replace(b"{host}", host.encode("ascii"))


def suggested(port: int, protocol: Protocol, *, intrusive: bool) -> Probe | None:
    """The probe the port number suggests, if any."""
    for probe in PROBES:
        if (
            probe.protocol is protocol
            and port in probe.ports
            and (intrusive or not probe.intrusive)
        ):
            return probe
    return None


def fallbacks(protocol: Protocol, *, intrusive: bool) -> list[Probe]:
    """All payload probes for `protocol`, most common first (the null probe excluded)."""
    chosen = [
        p
        for p in PROBES
        if p.protocol is protocol and p.name != "null" and (intrusive or not p.intrusive)
    ]
    return sorted(chosen, key=lambda p: p.rarity)
