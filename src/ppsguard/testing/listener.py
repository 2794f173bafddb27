"""A tiny real listener the lab runs inside a host: `python -m ppsguard.testing.listener`.

TCP: accept, send the banner if any, echo what arrives, close after the peer does (or 10 s idle).
UDP: echo every datagram. Prints `READY <port>` on stdout once bound, so the lab knows it is up.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading


def _serve_tcp_client(conn: socket.socket, banner: bytes) -> None:
    with conn:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            if banner:
                conn.sendall(banner)
            while data := conn.recv(65536):
                conn.sendall(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", choices=("tcp", "udp"), default="tcp")
    parser.add_argument("--address", default="::")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--banner", default=None)
    parser.add_argument("--v6only", action="store_true")
    args = parser.parse_args(argv)
    family = socket.AF_INET6 if ":" in args.address else socket.AF_INET
    kind = socket.SOCK_STREAM if args.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if args.v6only else 0)
    sock.bind((args.address, args.port))
    banner = (args.banner or "").encode().decode("unicode_escape").encode("latin-1")
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    if kind == socket.SOCK_DGRAM:
        while True:
            data, peer = sock.recvfrom(65536)
            sock.sendto(data, peer)
    while True:
        conn, _peer = sock.accept()
        threading.Thread(target=_serve_tcp_client, args=(conn, banner), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
