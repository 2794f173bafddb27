"""TLS on any port, directly or after STARTTLS: version, cipher and the peer certificate.

`describe_certificate` is pure (DER bytes in, TlsInfo out, parsed with `cryptography`).
`tls_exchange` is the network part: it opens a connection (plain first when a STARTTLS upgrade
is needed), shakes hands with verification OFF (we are reading what is there, not trusting it),
optionally sends a payload inside the tunnel and returns what came back. All waits end at the
caller's absolute deadline; at most `cap` bytes are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import re
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ppsguard.model.scan import TlsInfo
from ppsguard.scan.identify.escape import escape_text

_LDAP_STARTTLS = bytes.fromhex("301d02010177188016312e332e362e312e342e312e313436362e3230303337")
_PG_SSLREQUEST = bytes.fromhex("0000000804d2162f")


def describe_certificate(
    der: bytes | None, version: str, cipher: str, now: dt.datetime, starttls: str | None = None
) -> TlsInfo:
    """TlsInfo for a handshake that negotiated `version`/`cipher` and presented `der`."""
    if not der:
        return TlsInfo(version=version, cipher=cipher, starttls=starttls)
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return TlsInfo(
            version=version, cipher=cipher, subject="(unparsable certificate)", starttls=starttls
        )
    sans: list[str] = []
    try:
        extension = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names = extension.value
        if isinstance(names, x509.SubjectAlternativeName):
            sans.extend(escape_text(n, 120) for n in names.get_values_for_type(x509.DNSName))
            sans.extend(str(a) for a in names.get_values_for_type(x509.IPAddress))
    except (x509.ExtensionNotFound, ValueError):
        pass
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    subject = escape_text(cert.subject.rfc4514_string(), 200)
    issuer = escape_text(cert.issuer.rfc4514_string(), 200)
    return TlsInfo(
        version=version,
        cipher=cipher,
        subject=subject,
        issuer=issuer,
        sans=tuple(sans[:20]),
        not_before=not_before,
        not_after=not_after,
        self_signed=cert.subject == cert.issuer,
        expired=not_after < now or not_before > now,
        starttls=starttls,
    )


@dataclass(frozen=True, slots=True)
class TlsOutcome:
    info: TlsInfo | None
    response: bytes  # what came back inside the tunnel
    error: str | None = None
    inner_probe: str = "http-get"  # what `response` answers: "null" for a banner


async def read_idle(
    reader: asyncio.StreamReader, deadline: float, first_wait: float, cap: int, idle: float = 0.15
) -> bytes:
    """Read until EOF, `cap` bytes, the deadline, no first byte within `first_wait`, or a
    silence of `idle` seconds after data started to arrive."""
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < cap:
        now = loop.time()
        wait = min(deadline, now + (first_wait if not data else idle)) - now
        if wait <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(cap - len(data)), wait)
        except (TimeoutError, OSError, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    return data


# ALPN ids (IANA registry) we offer when the protocol inside TLS is still unknown, and the
# service each one names when the server chooses it
ALPN_SERVICES: dict[str, str] = {
    "h2": "https",
    "http/1.1": "https",
    "imap": "imap",
    "pop3": "pop3",
    "ftp": "ftp",
    "smtp": "smtp",
    "xmpp-client": "xmpp",
    "xmpp-server": "xmpp",
    "mqtt": "mqtt",
    "dot": "dns",
    "postgresql": "postgresql",
    "managesieve": "sieve",
    "ldap": "ldap",
    "coap": "coap",
}


# what we offer: every id above but h2 (our HTTP probe speaks HTTP/1.x); a server that picks a
# non-HTTP id has named its protocol and gets no HTTP request
ALPN_OFFER: tuple[str, ...] = tuple(a for a in ALPN_SERVICES if a != "h2")


def client_context(alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - asyncio.get_running_loop().time())


async def read_until(
    reader: asyncio.StreamReader, pattern: re.Pattern[bytes], deadline: float, cap: int
) -> bytes:
    """Read until `pattern` matches the data so far, EOF, `cap` bytes or the deadline."""
    data = b""
    while len(data) < cap and not pattern.search(data):
        left = _remaining(deadline)
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(cap - len(data)), left)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


_STEPS: dict[str, tuple[bytes | None, bytes, bytes, bytes]] = {
    # protocol: (greeting end pattern or None, command, reply-complete pattern, success pattern)
    "smtp": (rb"(?m)^220 ", b"EHLO ppsguard\r\n", rb"(?m)^250 ", rb"(?m)^250[ -]STARTTLS"),
    "imap": (rb"\r\n", b"a1 STARTTLS\r\n", rb"(?m)^a1 ", rb"(?m)^a1 OK"),
    "pop3": (rb"\r\n", b"STLS\r\n", rb"\r\n", rb"^\+OK"),
    "ftp": (rb"(?m)^220 ", b"AUTH TLS\r\n", rb"\r\n", rb"^234"),
}


async def _upgrade(
    reader: asyncio.StreamReader, stream: asyncio.StreamWriter, protocol: str, deadline: float
) -> bool:
    cap = 16384
    if protocol == "ldap":
        stream.write(_LDAP_STARTTLS)
        await stream.drain()
        reply = await read_until(
            reader, re.compile(rb"\x78.{0,4}?\x0a\x01", re.DOTALL), deadline, cap
        )
        return re.search(rb"\x78.{0,4}?\x0a\x01\x00", reply, re.DOTALL) is not None
    if protocol == "postgresql":
        stream.write(_PG_SSLREQUEST)
        await stream.drain()
        reply = await read_until(reader, re.compile(rb"."), deadline, 1)
        return reply == b"S"
    greeting, command, done, success = _STEPS[protocol]
    if greeting is not None:
        await read_until(reader, re.compile(greeting), deadline, cap)
    if protocol == "smtp":
        stream.write(command)
        await stream.drain()
        reply = await read_until(reader, re.compile(done), deadline, cap)
        if not re.search(success, reply):
            return False
        stream.write(b"STARTTLS\r\n")
        await stream.drain()
        reply = await read_until(reader, re.compile(rb"\r\n"), deadline, cap)
        return reply.startswith(b"220")
    stream.write(command)
    await stream.drain()
    reply = await read_until(reader, re.compile(done), deadline, cap)
    return re.search(success, reply) is not None


async def tls_exchange(
    host: str,
    port: int,
    deadline: float,
    *,
    payload: bytes = b"",
    starttls: str | None = None,
    cap: int = 65536,
    passive_wait: float = 0.25,
    handshake_wait: float = 1.0,
    now: dt.datetime | None = None,
    alpn: tuple[str, ...] = (),
) -> TlsOutcome:
    """Shake hands (after a STARTTLS upgrade when `starttls` names a protocol), send `payload`
    inside the tunnel and read the answer. A peer that does not answer the ClientHello within
    `handshake_wait` is not TLS. Failures come back as data (`error`), never raised."""
    writer: asyncio.StreamWriter | None = None
    try:
        reader, stream = await asyncio.wait_for(
            asyncio.open_connection(host, port), _remaining(deadline)
        )
        writer = stream
        if starttls is not None and not await asyncio.wait_for(
            _upgrade(reader, stream, starttls, deadline), _remaining(deadline)
        ):
            return TlsOutcome(None, b"", f"{starttls} STARTTLS refused")
        await asyncio.wait_for(
            stream.start_tls(client_context(alpn), server_hostname=None),
            min(_remaining(deadline), handshake_wait),
        )
        ssl_object = stream.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject):
            return TlsOutcome(None, b"", "no TLS session")
        cipher = ssl_object.cipher()
        info = describe_certificate(
            ssl_object.getpeercert(binary_form=True),
            ssl_object.version() or "unknown",
            cipher[0] if cipher else "unknown",
            now or dt.datetime.now(dt.UTC),
            starttls,
        )
        chosen = ssl_object.selected_alpn_protocol()
        if chosen:
            info = dataclasses.replace(info, alpn=escape_text(chosen, 40))
            if chosen != "http/1.1":  # the server named its protocol: no HTTP request for it
                banner = await read_idle(reader, deadline, passive_wait, cap)
                return TlsOutcome(info, banner, inner_probe="null")
        # services that speak first inside TLS (imaps, pop3s, smtps) get a short passive read
        response = await read_idle(reader, deadline, passive_wait, cap)
        if response or not payload:
            return TlsOutcome(info, response, inner_probe="null")
        stream.write(payload)
        await stream.drain()
        response = await read_idle(reader, deadline, _remaining(deadline), cap)
        return TlsOutcome(info, response)
    except (OSError, TimeoutError, ssl.SSLError, EOFError, ValueError) as error:
        return TlsOutcome(None, b"", f"{type(error).__name__}: {escape_text(str(error), 120)}")
    finally:
        if writer is not None:
            writer.transport.abort()
