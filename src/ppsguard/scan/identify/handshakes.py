"""Parsers that CONFIRM a protocol from its handshake bytes. Pure: bytes in, Handshake out.

A parser returns None when the bytes are not that protocol; it never raises on garbage.
`parse(probe, data)` tries the parsers that make sense for the probe that produced `data`.
Product names and CPEs come from the signatures; parsers give the protocol, and a version
where the protocol itself carries one (MySQL greeting, memcached, Redis INFO, MongoDB buildinfo).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from ppsguard.scan.identify import handshakes_more as more
from ppsguard.scan.identify.escape import clean_field
from ppsguard.scan.identify.shake import Handshake

_SSH = re.compile(rb"^SSH-(\d+\.\d+)-([!-~]+)")
_HTTP = re.compile(rb"^HTTP/(\d\.\d) (\d{3})")
_RFB = re.compile(rb"^RFB (\d{3})\.(\d{3})\n")


def ssh(data: bytes) -> Handshake | None:
    found = _SSH.match(data)
    if not found:
        return None
    return Handshake("ssh", extra=f"protocol {found.group(1).decode()}")


def mysql(data: bytes) -> Handshake | None:
    if len(data) < 6:
        return None
    length = int.from_bytes(data[:3], "little")
    if data[3] != 0 or length < 2 or length > 0xFFFF:
        return None
    if data[4] == 0x0A:
        end = data.find(b"\x00", 5)
        if end < 0 or end - 5 > 80:
            return None
        version = data[5:end]
        if not re.fullmatch(rb"[0-9][0-9A-Za-z.\-_+~]*", version):
            return None
        product = "MariaDB" if b"MariaDB" in version else "MySQL"
        number = re.match(rb"(?:5\.5\.5-)?([0-9.]+[0-9A-Za-z.\-]*?)(?:-MariaDB.*)?$", version)
        shown = number.group(1) if number else version
        return Handshake("mysql", product, clean_field(shown), "protocol 10")
    if data[4] == 0xFF and len(data) >= 7:  # error packet, e.g. "Host ... is not allowed"
        message = data[7 : 4 + length]
        if b"MySQL" in message or b"MariaDB" in message or b"not allowed" in message:
            return Handshake("mysql", extra=clean_field(message))
    return None


def rfb(data: bytes) -> Handshake | None:
    found = _RFB.match(data)
    if not found:
        return None
    return Handshake("vnc", extra=f"protocol {int(found.group(1))}.{int(found.group(2))}")


def telnet(data: bytes) -> Handshake | None:
    if len(data) >= 3 and data[0] == 0xFF and data[1] in (0xFB, 0xFC, 0xFD, 0xFE):
        return Handshake("telnet")
    return None


def http(data: bytes) -> Handshake | None:
    found = _HTTP.match(data)
    if not found:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    headers: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    extras = [f"status {found.group(2).decode()}"]
    title = re.search(rb"(?is)<title[^>]*>(.{0,200}?)</title>", body)
    if title and title.group(1).strip():
        extras.append(f"title: {clean_field(title.group(1), 60)}")
    location = headers.get(b"location")
    if location:
        extras.append(f"redirect: {clean_field(location, 80)}")
    product = version = None
    server = headers.get(b"server")
    if server:
        token = server.split(b" ")[0]
        name, _, number = token.partition(b"/")
        product, version = clean_field(name), clean_field(number)
    proxy = _proxy(headers, product)
    if proxy is not None:
        if product and product.lower() != (proxy[0] or "").lower():
            extras.append(f"behind it: {product}{' ' + version if version else ''}")
        return Handshake("http-proxy", proxy[0], proxy[1], "; ".join(extras))
    return Handshake("http", product, version, "; ".join(extras))


_PROXY_PRODUCTS = {
    b"squid": "Squid",
    b"tinyproxy": "Tinyproxy",
    b"privoxy": "Privoxy",
    b"varnish": "Varnish",
    b"ats": "Apache Traffic Server",
    b"polipo": "Polipo",
}
_VIA_COMMENT = re.compile(rb"\(([A-Za-z][\w.\-]*)/([\w.\-]+)\)")


def _proxy(headers: dict[bytes, bytes], server: str | None) -> tuple[str | None, str | None] | None:
    """(product, version) of the proxy that answered, from `Via:` (RFC 9110 7.6.3), a proxy's
    own `Server:` or its error headers; None when no proxy shows itself."""
    via = headers.get(b"via")
    if via is not None:
        last = via.split(b",")[-1].strip()  # the hop nearest to us is listed last
        comment = _VIA_COMMENT.search(last)
        if comment:
            name = comment.group(1)
            product = _PROXY_PRODUCTS.get(name.lower()) or clean_field(name)
            return product, clean_field(comment.group(2))
        parts = last.split()
        pseudonym = parts[1].lower() if len(parts) > 1 else b""
        named = next((p for key, p in _PROXY_PRODUCTS.items() if key in pseudonym), None)
        return named, None
    token = (headers.get(b"server") or b"").split(b" ")[0]
    name, _, number = token.partition(b"/")
    if name.lower() in _PROXY_PRODUCTS:
        return _PROXY_PRODUCTS[name.lower()], clean_field(number)
    if b"x-squid-error" in headers:
        return "Squid", None
    return None


def redis(data: bytes) -> Handshake | None:
    if data.startswith(b"$") and b"redis_version:" in data:
        found = re.search(rb"redis_version:([0-9A-Za-z.\-]+)", data)
        mode = re.search(rb"redis_mode:(\w+)", data)
        extra = f"mode {mode.group(1).decode()}" if mode else None
        return Handshake("redis", "Redis", clean_field(found.group(1)) if found else None, extra)
    if re.match(rb"^-(NOAUTH|DENIED|WRONGPASS|NOPERM)\b", data) or data.startswith(
        b"-ERR unknown command"
    ):
        return Handshake("redis", "Redis", extra=clean_field(data.split(b"\r\n")[0], 60))
    return None


def memcached(data: bytes) -> Handshake | None:
    found = re.match(rb"^VERSION ([0-9][0-9A-Za-z.\-]*)\r\n", data)
    if not found:
        return None
    return Handshake("memcached", "memcached", clean_field(found.group(1)))


def postgresql(data: bytes) -> Handshake | None:
    if len(data) < 9 or data[0:1] not in (b"E", b"R"):
        return None
    length = int.from_bytes(data[1:5], "big")
    if length < 8 or length > 0x10000:
        return None
    if data[0:1] == b"R":
        return Handshake("postgresql", "PostgreSQL", extra="authentication requested")
    if data[5:6] != b"S" or not re.match(rb"S(FATAL|ERROR|PANIC)\x00", data[5:]):
        return None
    message = re.search(rb"\x00M([^\x00]{0,200})\x00", data)
    return Handshake(
        "postgresql", "PostgreSQL", extra=clean_field(message.group(1), 80) if message else None
    )


def _bson_strings(document: bytes) -> dict[str, str]:
    """Top-level string fields of a BSON document (other types skipped; stops on anything odd)."""
    fields: dict[str, str] = {}
    fixed = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x10: 4, 0x11: 8, 0x12: 8, 0x0A: 0}
    position = 4
    while position < len(document) - 1:
        kind = document[position]
        end = document.find(b"\x00", position + 1)
        if end < 0:
            break
        name = document[position + 1 : end].decode("latin-1")
        position = end + 1
        if kind == 0x02:
            size = int.from_bytes(document[position : position + 4], "little")
            fields[name] = document[position + 4 : position + 3 + size].decode("latin-1")
            position += 4 + size
        elif kind in (0x03, 0x04):
            position += int.from_bytes(document[position : position + 4], "little")
        elif kind in fixed:
            position += fixed[kind]
        else:
            break
    return fields


def mongodb(data: bytes) -> Handshake | None:
    if len(data) < 21:
        return None
    length, _request, _response_to, opcode = struct.unpack("<iiii", data[:16])
    if length < 21 or length > 48 * 1024 * 1024:
        return None
    if opcode == 2013:
        document = data[21:]
    elif opcode == 1 and len(data) >= 36:
        document = data[36:]
    else:
        return None
    fields = _bson_strings(document)
    version = fields.get("version")
    if version is None and b"errmsg" not in data:
        return None
    return Handshake(
        "mongodb", "MongoDB", clean_field(version.encode("latin-1")) if version else None
    )


def dns(data: bytes) -> Handshake | None:
    message = (
        data[2:] if len(data) >= 14 and int.from_bytes(data[:2], "big") == len(data) - 2 else data
    )
    if len(message) < 12 or message[:2] != b"\x50\x53" or not message[2] & 0x80:
        return None
    answer = re.search(rb"\x00\x10\x00\x03.{4}..(.)", message[29:], re.DOTALL)
    text = None
    if answer:
        start = 29 + answer.end()
        text = clean_field(message[start : start + answer.group(1)[0]])
    return Handshake("dns", extra=f"version.bind: {text}" if text else None)


def ntp(data: bytes) -> Handshake | None:
    if len(data) < 48 or data[0] & 0x07 != 4:
        return None
    version = (data[0] >> 3) & 0x07
    if version not in (1, 2, 3, 4):
        return None
    return Handshake("ntp", extra=f"NTPv{version}, stratum {data[1]}")


def snmp(data: bytes) -> Handshake | None:
    if len(data) < 20 or data[0] != 0x30 or b"\xa2" not in data[:40]:
        return None
    oid = data.find(b"\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x04")
    description = None
    if oid >= 0 and oid + 12 <= len(data):
        size = data[oid + 11]
        description = clean_field(data[oid + 12 : oid + 12 + size], 120)
    return Handshake("snmp", extra=f"sysDescr: {description}" if description else None)


def rdp(data: bytes) -> Handshake | None:
    if len(data) >= 11 and data[0] == 0x03 and data[1] == 0x00 and data[5] == 0xD0:
        return Handshake("rdp")
    return None


def smb(data: bytes) -> Handshake | None:
    if len(data) >= 8 and data[0] == 0x00 and data[4:8] in (b"\xffSMB", b"\xfeSMB"):
        dialect = "SMB2+" if data[4:8] == b"\xfeSMB" else "SMB1"
        return Handshake("smb", extra=dialect)
    return None


def ldap(data: bytes) -> Handshake | None:
    if (
        len(data) >= 8
        and data[0] == 0x30
        and re.match(rb"\x30[\x00-\xff]{1,4}?\x02\x01\x01[\x64\x65\x78]", data)
    ):
        return Handshake("ldap")
    return None


Parser = Callable[[bytes], Handshake | None]

_SPEAKS_FIRST: tuple[Parser, ...] = (ssh, mysql, rfb, telnet, more.rsync, more.nats)
BY_PROBE: dict[str, tuple[Parser, ...]] = {
    "null": _SPEAKS_FIRST,
    "http-get": (http, *_SPEAKS_FIRST),
    "http-version": (http, *_SPEAKS_FIRST),
    "redis-info": (redis, *_SPEAKS_FIRST),
    "memcached-version": (memcached, *_SPEAKS_FIRST),
    "postgresql-startup": (postgresql, *_SPEAKS_FIRST),
    "mongodb-buildinfo": (mongodb, *_SPEAKS_FIRST),
    "dns-version-tcp": (dns, *_SPEAKS_FIRST),
    "dns-version-udp": (dns,),
    "ntp-client": (ntp,),
    "snmp-sysdescr": (snmp,),
    "snmpv3-discovery": (more.snmpv3,),
    "rdp-x224": (rdp, *_SPEAKS_FIRST),
    "smb-negotiate": (smb, *_SPEAKS_FIRST),
    "ldap-rootdse": (more.ldap_rootdse, ldap, *_SPEAKS_FIRST),
    "mqtt-connect": (more.mqtt, *_SPEAKS_FIRST),
    "amqp-header": (more.amqp, *_SPEAKS_FIRST),
    "stomp-connect": (more.stomp, *_SPEAKS_FIRST),
    "kafka-apiversions": (more.kafka, *_SPEAKS_FIRST),
    "x11-setup": (more.x11, *_SPEAKS_FIRST),
    "zabbix-version": (more.zabbix, *_SPEAKS_FIRST),
    "openvpn-tcp": (more.openvpn, *_SPEAKS_FIRST),
    "openvpn-udp": (more.openvpn,),
    "ike-main-mode": (more.ike,),
}


def parse(probe: str, data: bytes) -> Handshake | None:
    """The protocol `data` (the answer to `probe`) proves, or None."""
    for parser in BY_PROBE.get(probe, _SPEAKS_FIRST):
        try:
            result = parser(data)
        except (ValueError, IndexError, struct.error):
            result = None
        if result is not None:
            return result
    return None
