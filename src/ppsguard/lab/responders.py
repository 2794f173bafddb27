"""Tiny DNS and SNMP responders for lab tests and benchmarks (never for production use).

`python -m ppsguard.lab.responders --dns 53 --snmp 161` answers DNS queries with REFUSED
(header echoed, QR set) and SNMP requests with a get-response carrying a fixed sysDescr. Prints
READY once bound. Runs until killed.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys


def dns_answer(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None
    flags = (
        0x8000 | (int.from_bytes(query[2:4], "big") & 0x0100) | 0x0080 | 5
    )  # QR, RD, RA, REFUSED
    return query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\0\0\0\0\0\0" + query[12:]


def snmp_answer(query: bytes) -> bytes | None:
    if len(query) < 2 or query[0] != 0x30:
        return None
    idx = query.find(b"\xa0")
    if idx < 0:
        return None
    return (
        query[:idx] + b"\xa2" + query[idx + 1 :]
    )  # same PDU as get-response (noSuchObject-free echo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dns", type=int)
    parser.add_argument("--snmp", type=int)
    args = parser.parse_args(argv)
    sel = selectors.DefaultSelector()
    for port, handler in ((args.dns, dns_answer), (args.snmp, snmp_answer)):
        if port is None:
            continue
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        sel.register(sock, selectors.EVENT_READ, handler)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        for key, _ in sel.select():
            server = key.fileobj
            assert isinstance(server, socket.socket)
            data, peer = server.recvfrom(65535)
            reply = key.data(data)
            if reply:
                server.sendto(reply, peer)


if __name__ == "__main__":
    raise SystemExit(main())
