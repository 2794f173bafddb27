"""Hostile TCP services for the identification tests, runnable as a script inside a lab host:

    python hostile_service.py MODE ADDRESS PORT [CERT KEY]

MODE: endless (streams bytes forever), drip (one byte every 0.3 s), garbage (random binary),
escapes (terminal escape sequences), tarpit (accepts, never sends), tls (TLS with the given
certificate, answers HTTP inside). Bounded: the process exits after 120 s on its own.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys

LIFETIME_S = 120


async def _endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    chunk = b"A" * 8192
    for _ in range(100_000):
        writer.write(chunk)
        await writer.drain()


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(400):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.3)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(os.urandom(3000))
    await writer.drain()
    await asyncio.sleep(5)


async def _escapes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x1b]0;pwned\x07\x1b[2J\x1b[31mHELLO\x1b[0m\r\n\x00\x9b31m")
    await writer.drain()
    await asyncio.sleep(5)


async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(LIFETIME_S)


async def _tls_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.write(b"HTTP/1.1 200 OK\r\nServer: hostile-tls/1.0\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


HANDLERS = {
    "endless": _endless,
    "drip": _drip,
    "garbage": _garbage,
    "escapes": _escapes,
    "tarpit": _tarpit,
    "tls": _tls_http,
}


async def serve(mode: str, address: str, port: int, cert: str | None, key: str | None) -> None:
    handler = HANDLERS[mode]

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    context = None
    if mode == "tls" and cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    server = await asyncio.start_server(guarded, address, port, ssl=context)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(LIFETIME_S)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        serve(
            args[0],
            args[1],
            int(args[2]),
            args[3] if len(args) > 3 else None,
            args[4] if len(args) > 4 else None,
        )
    )
