"""The identification engine against real loopback servers (in-process asyncio servers)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import pytest

from ppsguard.model.net import Protocol
from ppsguard.model.scan import Confidence
from ppsguard.scan.identify import identify_services
from ppsguard.testing.certificates import self_signed_pem

LOOPBACK = ipaddress.ip_address("127.0.0.1")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def server_context(directory: Path, *, expired: bool) -> ssl.SSLContext:
    """A TLS server context with a fresh self-signed certificate for `hostile.test`."""
    cert, key = self_signed_pem(
        directory, common_name="hostile.test", expired=expired, sans=["hostile.test"]
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def guard(handler: Handler) -> Handler:
    """Server side: errors from our probes are expected; always close the connection."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    return guarded


async def _serve_and_identify(
    handler: Handler, *, context: ssl.SSLContext | None = None, budget: float = 1.5
) -> tuple[object, float]:
    server = await asyncio.start_server(guard(handler), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    async with server:
        started = loop.time()
        result = await identify_services([(LOOPBACK, port, Protocol.TCP)], timeout=budget)
        took = loop.time() - started
    server.close()
    return result[(LOOPBACK, port, Protocol.TCP)], took


def run(handler: Handler, **kwargs: object) -> tuple[object, float]:
    return asyncio.run(_serve_and_identify(handler, **kwargs))  # type: ignore[arg-type]


async def _ssh_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    await writer.drain()
    await asyncio.sleep(3)


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.write(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n<title>hi</title>")
    await writer.drain()


async def _redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await asyncio.wait_for(reader.read(100), 3)
    if request.startswith(b"*2\r\n$4\r\nINFO"):
        writer.write(b"$40\r\n# Server\r\nredis_version:7.0.15\r\nos:Linux\r\n\r\n")
    else:
        writer.write(b"-ERR unknown command\r\n")
    await writer.drain()


async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(10)


async def _endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(2000):
        writer.write(b"\x1b[2J" * 1024)
        await writer.drain()


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(40):
        writer.write(b"\x1b")
        await writer.drain()
        await asyncio.sleep(0.1)


async def _escapes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x1b]0;pwned\x07\x1b[2J\r\n")
    await writer.drain()
    await asyncio.sleep(3)


def test_ssh_banner_on_unusual_port_is_confirmed_with_evidence() -> None:
    service, _ = run(_ssh_banner)
    assert service.name == "ssh"  # type: ignore[attr-defined]
    assert service.product == "OpenSSH" and service.version == "9.2p1"  # type: ignore[attr-defined]
    assert service.confidence is Confidence.CONFIRMED  # type: ignore[attr-defined]
    assert service.evidence.response.startswith("SSH-2.0-OpenSSH_9.2p1")  # type: ignore[attr-defined]


def test_http_found_by_fallback_probe() -> None:
    service, _ = run(_http)
    assert (service.name, service.product, service.version) == ("http", "nginx", "1.22.1")  # type: ignore[attr-defined]
    assert "title: hi" in (service.extra or "")  # type: ignore[attr-defined]


def test_redis_on_unusual_port() -> None:
    service, _ = run(_redis)
    assert (service.name, service.version) == ("redis", "7.0.15")  # type: ignore[attr-defined]


@pytest.mark.parametrize("handler", [_tarpit, _endless, _drip, _escapes], ids=lambda h: h.__name__)
def test_hostile_services_finish_within_budget_and_stay_escaped(handler: Handler) -> None:
    service, took = run(handler, budget=1.0)
    assert took < 5.0  # generous bound: the budget is 1 s; this only catches a hang
    evidence = service.evidence  # type: ignore[attr-defined]
    text = f"{evidence.probe} {evidence.response}"
    assert "\x1b" not in text and "\x07" not in text
    assert evidence.response is None or len(evidence.response) < 400


def test_tls_expired_self_signed_certificate_is_described(tmp_path: Path) -> None:
    context = server_context(tmp_path, expired=True)
    service, _ = run(_http, context=context)
    tls = service.tls  # type: ignore[attr-defined]
    assert service.name == "https" and service.product == "nginx"  # type: ignore[attr-defined]
    assert tls is not None and tls.expired is True and tls.self_signed is True
    assert tls.subject == "CN=hostile.test" and tls.sans == ("hostile.test",)
    assert tls.version.startswith("TLS")


def test_many_ports_with_tarpits_run_in_parallel() -> None:
    async def scenario() -> dict[int, str | None]:
        servers = [await asyncio.start_server(guard(_tarpit), "127.0.0.1", 0) for _ in range(6)]
        servers.append(await asyncio.start_server(guard(_ssh_banner), "127.0.0.1", 0))
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        try:
            found = await identify_services(
                [(LOOPBACK, p, Protocol.TCP) for p in ports], timeout=1.0
            )
        finally:
            for server in servers:
                server.close()
        return {key[1]: value.name for key, value in found.items()}

    names = asyncio.run(scenario())
    assert sorted(n for n in names.values() if n) == ["ssh"]


# protocol: (greeting, {command prefix: reply}, upgrade command, upgrade reply, expected name)
STARTTLS_DIALOGUES: dict[str, tuple[bytes, dict[bytes, bytes], bytes, bytes, str]] = {
    "smtp": (
        b"220 mail.lab.test ESMTP Postfix (Debian/GNU)\r\n",
        {b"EHLO": b"250-mail.lab.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"},
        b"STARTTLS",
        b"220 2.0.0 Ready to start TLS\r\n",
        "smtp",
    ),
    "imap": (
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot (Debian) ready.\r\n",
        {},
        b"a1 STARTTLS",
        b"a1 OK Begin TLS negotiation now.\r\n",
        "imap",
    ),
    "pop3": (
        b"+OK Dovecot (Debian) ready.\r\n",
        {},
        b"STLS",
        b"+OK Begin TLS negotiation now.\r\n",
        "pop3",
    ),
    "ftp": (
        b"220 (vsFTPd 3.0.3)\r\n",
        {},
        b"AUTH TLS",
        b"234 Proceed with negotiation.\r\n",
        "ftp",
    ),
}


@pytest.mark.parametrize("protocol", sorted(STARTTLS_DIALOGUES))
def test_starttls_certificate_is_read(protocol: str, tmp_path: Path) -> None:
    greeting, replies, upgrade, upgrade_reply, name = STARTTLS_DIALOGUES[protocol]
    context = server_context(tmp_path, expired=False)

    async def dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        for _ in range(10):
            line = await asyncio.wait_for(reader.readline(), 3)
            if not line:
                return
            if line.startswith(upgrade):
                writer.write(upgrade_reply)
                await writer.drain()
                await writer.start_tls(context)
                await asyncio.sleep(1)
                return
            reply = next((r for p, r in replies.items() if line.startswith(p)), b"500 what?\r\n")
            writer.write(reply)
            await writer.drain()

    service, _ = run(dialogue, budget=2.0)
    assert service.name == name  # type: ignore[attr-defined]
    tls = service.tls  # type: ignore[attr-defined]
    assert tls is not None and tls.starttls == protocol and tls.subject == "CN=hostile.test"
    assert tls.expired is False and tls.self_signed is True


def test_postgresql_sslrequest_starttls(tmp_path: Path) -> None:
    context = server_context(tmp_path, expired=False)

    async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await asyncio.wait_for(reader.readexactly(8), 3)
        if first == bytes.fromhex("0000000804d2162f"):
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(context)
            await asyncio.sleep(1)
            return
        rest = await asyncio.wait_for(reader.read(200), 1)
        del rest
        message = b"SFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00"
        writer.write(b"E" + (len(message) + 4).to_bytes(4, "big") + message)
        await writer.drain()

    service, _ = run(postgres, budget=2.0)
    assert service.name == "postgresql"  # type: ignore[attr-defined]
    assert service.tls is not None and service.tls.starttls == "postgresql"  # type: ignore[attr-defined]


class _NtpServer(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) == 48 and data[0] & 7 == 3:  # a client request: answer as a stratum 2 server
            self.transport.sendto(b"\x24\x02\x03\xe8" + b"\x00" * 8 + b"LOCL" + b"\x00" * 32, addr)


def test_udp_ntp_is_confirmed_and_silent_udp_is_guessed() -> None:
    async def scenario() -> tuple[object, object]:
        loop = asyncio.get_running_loop()
        ntp, _ = await loop.create_datagram_endpoint(_NtpServer, local_addr=("127.0.0.1", 0))
        silent, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        ntp_port = ntp.get_extra_info("sockname")[1]
        silent_port = silent.get_extra_info("sockname")[1]
        try:
            found = await identify_services(
                [(LOOPBACK, ntp_port, Protocol.UDP), (LOOPBACK, silent_port, Protocol.UDP)],
                timeout=1.0,
            )
        finally:
            ntp.close()
            silent.close()
        return found[(LOOPBACK, ntp_port, Protocol.UDP)], found[
            (LOOPBACK, silent_port, Protocol.UDP)
        ]

    ntp_service, silent_service = asyncio.run(scenario())
    assert ntp_service.name == "ntp" and ntp_service.extra == "NTPv4, stratum 2"  # type: ignore[attr-defined]
    assert silent_service.confidence is Confidence.GUESSED  # type: ignore[attr-defined]


def test_ldap_starttls_extended_operation(tmp_path: Path) -> None:
    context = server_context(tmp_path, expired=False)
    starttls_request = bytes.fromhex(
        "301d02010177188016312e332e362e312e342e312e313436362e3230303337"
    )

    async def ldap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await asyncio.wait_for(reader.read(512), 3)
        if request == starttls_request:
            writer.write(bytes.fromhex("300c02010178070a010004000400"))  # extendedResp success
            await writer.drain()
            await writer.start_tls(context)
            await asyncio.sleep(1)
        elif request.startswith(b"\x30") and b"\x63" in request[:8]:
            writer.write(bytes.fromhex("300c02010165070a010004000400"))  # searchResDone success
            await writer.drain()

    service, _ = run(ldap, budget=2.0)
    assert service.name == "ldap"  # type: ignore[attr-defined]
    assert service.tls is not None and service.tls.starttls == "ldap"  # type: ignore[attr-defined]


def test_the_port_number_suggests_what_the_knowledge_base_names() -> None:
    from ppsguard.knowledge.services import service_name
    from ppsguard.scan.identify.runner import expected_service

    assert expected_service(22, Protocol.TCP) == "ssh"
    assert expected_service(3306, Protocol.TCP) == service_name(3306, Protocol.TCP) == "mysql"


async def _silent_inside_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3)  # a TLS service that answers nothing we send


def test_alpn_names_the_protocol_inside_an_unknown_tls_service(tmp_path: Path) -> None:
    context = server_context(tmp_path, expired=False)
    context.set_alpn_protocols(["mqtt"])  # the server speaks MQTT over TLS, and says so
    service, _ = run(_silent_inside_tls, context=context, budget=2.0)
    assert service.name == "mqtt", service  # type: ignore[attr-defined]
    assert service.tls is not None and service.tls.alpn == "mqtt"  # type: ignore[attr-defined]
    assert service.extra == "ALPN mqtt"  # type: ignore[attr-defined]


def test_tls_without_alpn_stays_tls(tmp_path: Path) -> None:
    service, _ = run(_silent_inside_tls, context=server_context(tmp_path, expired=False))
    assert service.name == "tls" and service.tls.alpn is None  # type: ignore[attr-defined]
