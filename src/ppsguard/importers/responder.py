"""A lab responder for `pps registry import --verify`: one process that accepts TCP and echoes UDP
on many ports, so "accepted" differs from "refused" on every probed port.

    python -m ppsguard.importers.responder --tcp 22,80 --udp 53

Binds `::` (dual-stack) on each port, prints READY, and serves until killed. Meant to run only
inside a lab host's namespace (the verifier starts it there and the lab kills it).
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import sys

MAX_PORTS = 1024


def _ports(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item][:MAX_PORTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tcp", default="")
    parser.add_argument("--udp", default="")
    args = parser.parse_args(argv)
    selector = selectors.DefaultSelector()
    for kind, ports in (
        (socket.SOCK_STREAM, _ports(args.tcp)),
        (socket.SOCK_DGRAM, _ports(args.udp)),
    ):
        for port in ports:
            sock = socket.socket(socket.AF_INET6, kind)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("::", port))
            except OSError:
                sock.close()
                continue
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, kind)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            fileobj = key.fileobj
            if not isinstance(fileobj, socket.socket):
                continue
            sock = fileobj
            with contextlib.suppress(OSError):
                if key.data == socket.SOCK_STREAM:
                    conn, _ = sock.accept()
                    conn.close()
                else:
                    data, peer = sock.recvfrom(512)
                    sock.sendto(data, peer)


if __name__ == "__main__":
    raise SystemExit(main())
