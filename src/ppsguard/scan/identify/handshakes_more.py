"""More handshake parsers: rsync, MQTT, AMQP, STOMP, NATS, Kafka, X11, Zabbix agent, OpenVPN,
IKE, and the LDAP root DSE. Pure: bytes in, Handshake out; None when the bytes are not that
protocol; never raises on garbage (the caller also catches IndexError/ValueError).

Written from the protocol specifications (rsync's daemon protocol, MQTT 3.1.1, AMQP 0-9-1,
STOMP 1.2, the NATS client protocol, the Kafka protocol guide, the X Window System protocol,
Zabbix's header protocol, OpenVPN's control channel, RFC 2408, RFC 4511). It must not do I/O.
"""

from __future__ import annotations

import json
import re

from ppsguard.scan.identify.escape import clean_field
from ppsguard.scan.identify.shake import Handshake

_RSYNC = re.compile(rb"^@RSYNCD: (\d+(?:\.\d+)?)")
_MOSQUITTO = re.compile(rb"mosquitto version ([0-9][\w.\-]*)")


def rsync(data: bytes) -> Handshake | None:
    """The rsync daemon greets with `@RSYNCD: <protocol>[ <digests>]`."""
    found = _RSYNC.match(data)
    if not found:
        return None
    return Handshake("rsync", "rsync daemon", extra=f"protocol {found.group(1).decode()}")


def mqtt(data: bytes) -> Handshake | None:
    """A CONNACK (type 2, remaining length 2) to our CONNECT; a retained $SYS/broker/version
    PUBLISH may follow (Mosquitto answers the subscription we pipelined)."""
    if len(data) < 4 or data[0] != 0x20 or data[1] != 0x02 or data[2] > 1:
        return None
    code = data[3]
    reasons = {0: "accepted", 4: "bad credentials", 5: "not authorised"}
    extra = f"CONNACK {reasons.get(code, f'code {code}')}"
    product = version = None
    found = _MOSQUITTO.search(data[4:])
    if found:
        product, version = "Mosquitto", clean_field(found.group(1))
    return Handshake("mqtt", product, version, extra)


def amqp(data: bytes) -> Handshake | None:
    """Connection.Start (class 10, method 10) with server-properties, or the protocol header
    a broker sends back when it does not speak the version we offered."""
    if data.startswith(b"AMQP") and len(data) >= 8:
        return Handshake("amqp", extra=f"offers AMQP {data[5]}-{data[6]}-{data[7]}")
    if len(data) < 12 or data[0] != 1 or data[7:11] != b"\x00\x0a\x00\x0a":
        return None
    fields: dict[str, bytes] = {}
    for key in re.finditer(rb"[\x04-\x14]([a-z_]{4,20})S", data):
        start = key.end()
        size = int.from_bytes(data[start : start + 4], "big")
        if size <= 200:  # long-string field of the server-properties table
            fields.setdefault(key.group(1).decode(), data[start + 4 : start + 4 + size])
    product = fields.get("product")
    version = fields.get("version")
    return Handshake(
        "amqp",
        clean_field(product) if product else None,
        clean_field(version) if version else None,
        f"AMQP {data[11]}-{data[12]}" if len(data) > 12 else None,
    )


def stomp(data: bytes) -> Handshake | None:
    """CONNECTED (or ERROR) frame: `server:name/version` is optional (STOMP 1.2)."""
    if not (data.startswith(b"CONNECTED\n") or data.startswith(b"ERROR\n")):
        return None
    head = data.split(b"\n\n", 1)[0]
    server = re.search(rb"\nserver:([^\n/]+)(?:/([^\n ]+))?", head)
    version = re.search(rb"\nversion:([\d.]+)", head)
    return Handshake(
        "stomp",
        clean_field(server.group(1)) if server else None,
        clean_field(server.group(2)) if server and server.group(2) else None,
        f"STOMP {version.group(1).decode()}" if version else None,
    )


def nats(data: bytes) -> Handshake | None:
    """The NATS server speaks first: `INFO {json}`."""
    if not data.startswith(b"INFO {"):
        return None
    line = data[5:].split(b"\r\n", 1)[0]
    try:
        info = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(info, dict) or "server_id" not in info:
        return None
    version = info.get("version")
    name = info.get("server_name")
    return Handshake(
        "nats",
        "NATS server",
        clean_field(str(version).encode()) if version else None,
        f"server {clean_field(str(name).encode(), 60)}" if name else None,
    )


def kafka(data: bytes) -> Handshake | None:
    """ApiVersions v0 response to correlation id 0x5053: error code, then the API key array."""
    if len(data) < 14:
        return None
    length = int.from_bytes(data[:4], "big")
    if length != len(data) - 4 or data[4:8] != b"\x00\x00\x50\x53":
        return None
    error = int.from_bytes(data[8:10], "big")
    count = int.from_bytes(data[10:14], "big")
    if error not in (0, 35) or count > 1000:
        return None
    return Handshake("kafka", "Apache Kafka", extra=f"{count} API keys")


def x11(data: bytes) -> Handshake | None:
    """Connection setup reply: 0 failed (with a reason), 1 success (with the vendor), 2 auth."""
    if len(data) < 8 or data[0] not in (0, 1, 2) or data[2:4] != b"\x0b\x00":
        return None
    if data[0] == 0:
        reason = clean_field(data[8 : 8 + data[1]], 80)
        return Handshake("x11", extra=f"refused: {reason}" if reason else "refused")
    if data[0] == 2:
        return Handshake("x11", extra="authentication required")
    if len(data) < 40:
        return None
    vendor_length = int.from_bytes(data[24:26], "little")
    vendor = clean_field(data[40 : 40 + vendor_length], 80)
    return Handshake("x11", vendor or None, extra="access granted")


def zabbix(data: bytes) -> Handshake | None:
    """`ZBXD\\x01` + 8-byte little-endian length + the agent.version value (or ZBX_NOTSUPPORTED)."""
    if not data.startswith(b"ZBXD") or len(data) < 13:
        return None
    value = data[13 : 13 + int.from_bytes(data[5:13], "little")]
    version = re.match(rb"^(\d+\.\d+\.\d+[\w.\-]*)$", value)
    return Handshake(
        "zabbix-agent",
        "Zabbix agent",
        clean_field(version.group(1)) if version else None,
        None if version else clean_field(value, 60) or None,
    )


def openvpn(data: bytes) -> Handshake | None:
    """P_CONTROL_HARD_RESET_SERVER_V2 (opcode 8) answering our client reset; over TCP the
    packet carries a 2-byte length prefix."""
    for packet in (data[2:], data):
        # opcode, server session id (8), ack count, acked packet id (4), our session id (8)
        if len(packet) >= 22 and packet[0] >> 3 == 8 and packet[14:22] == b"PPSGUARD":
            return Handshake("openvpn", "OpenVPN", extra="control channel reset")
    return None


def ike(data: bytes) -> Handshake | None:
    """An ISAKMP reply carrying our initiator cookie back (RFC 2408 header)."""
    if len(data) < 28 or data[:8] != b"PPSGUARD":
        return None
    version = data[17]
    exchange = {2: "identity protection", 4: "aggressive", 5: "informational", 34: "IKE_SA_INIT"}
    shown = exchange.get(data[18], f"exchange {data[18]}")
    return Handshake("ike", extra=f"ISAKMP {version >> 4}.{version & 0x0F}, {shown}")


def _ldap_values(data: bytes, attribute: bytes) -> list[bytes]:
    """Values of `attribute` in a SearchResultEntry (octet strings after its SET tag)."""
    at = data.find(b"\x04" + bytes([len(attribute)]) + attribute)
    if at < 0:
        return []
    position = at + 2 + len(attribute)
    if position + 2 > len(data) or data[position] != 0x31:
        return []
    size, position = data[position + 1], position + 2
    if size & 0x80:
        count = size & 0x7F
        size = int.from_bytes(data[position : position + count], "big")
        position += count
    values, end = [], min(len(data), position + size)
    while position + 2 <= end and data[position] == 0x04:
        length = data[position + 1]
        values.append(data[position + 2 : position + 2 + length])
        position += 2 + length
    return values


def ldap_rootdse(data: bytes) -> Handshake | None:
    """A SearchResultEntry/Done to our root DSE search: vendor from vendorName/vendorVersion
    (389 DS, ApacheDS, Oracle), OpenLDAP from its objectClass OpenLDAProotDSE."""
    if not re.match(rb"\x30[\x00-\xff]{1,4}?\x02\x01\x01[\x64\x65\x78]", data):
        return None
    vendor = b"".join(_ldap_values(data, b"vendorName")[:1])
    version = b"".join(_ldap_values(data, b"vendorVersion")[:1])
    classes = [c.lower() for c in _ldap_values(data, b"objectClass")]
    product = clean_field(vendor, 60) if vendor else None
    if product is None and b"openldaprootdse" in classes:
        product = "OpenLDAP"
    shown = None
    if version:
        number = re.search(rb"(\d+\.\d+(?:\.\d+)*)", version)
        shown = clean_field(number.group(1)) if number else clean_field(version, 60)
    return Handshake("ldap", product, shown, "root DSE readable" if classes or vendor else None)


def _tlv(data: bytes, position: int) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the BER element at `position`; IndexError past the end."""
    tag, size, position = data[position], data[position + 1], position + 2
    if size & 0x80:
        count = size & 0x7F
        size = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + size > len(data):
        raise IndexError("BER element longer than the datagram")
    return tag, data[position : position + size], position + size


_ENTERPRISES = {8072: "Net-SNMP", 9: "Cisco", 2636: "Juniper", 311: "Microsoft", 11: "HP"}


def snmpv3(data: bytes) -> Handshake | None:
    """The Report to our SNMPv3 discovery: version 3, the agent's engine ID (its first four
    bytes name the vendor's enterprise number), engine boots and time."""
    tag, message, _ = _tlv(data, 0)
    if tag != 0x30:
        return None
    tag, version, position = _tlv(message, 0)
    if tag != 0x02 or version != b"\x03":
        return None
    tag, _global, position = _tlv(message, position)
    tag, usm, position = _tlv(message, position)
    if tag != 0x04:
        return None
    _, parameters, _ = _tlv(usm, 0)
    tag, engine, at = _tlv(parameters, 0)
    _, boots, at = _tlv(parameters, at)
    _, uptime, _ = _tlv(parameters, at)
    if tag != 0x04:
        return None
    product = None
    if len(engine) >= 5 and engine[0] & 0x80:
        enterprise = int.from_bytes(engine[:4], "big") & 0x7FFFFFFF
        product = _ENTERPRISES.get(enterprise, f"enterprise {enterprise}")
    extra = (
        f"SNMPv3 engine {engine.hex() or '(none)'}, boots {int.from_bytes(boots, 'big')}, "
        f"up {int.from_bytes(uptime, 'big')} s"
    )
    return Handshake("snmp", product, extra=extra)
