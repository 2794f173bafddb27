"""`pps flows collect`: a NetFlow v5/v9/IPFIX collector on a UDP socket. I/O edge.

    for flow in collect("127.0.0.1:2055", duration=60, stats=decoder.stats): ...

Binds the address, decodes each export with `flows.netflow.NetflowDecoder` (templates cached
per exporter and observation domain, sampling applied, sequence gaps counted) and stitches the
one-way records into biflows (`flows.stitch`); a record whose reverse has not arrived within
`window` seconds is a flow on its own. Ends after `duration` seconds or when `stop` is set;
what is still waiting is flushed then. The receive buffer is 8 MiB so bursts are not dropped.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

from ppsguard.digits import decimal
from ppsguard.errors import PermissionDenied, UsageError
from ppsguard.flows.netflow import NetflowDecoder
from ppsguard.flows.stitch import Stitcher
from ppsguard.model.flows import Flow


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port_text = text.rpartition(":")
    port = decimal(port_text)
    if not host or port is None or not 0 < port < 65536:
        raise UsageError(f"--listen takes ADDRESS:PORT, got {text!r}", token=text)
    return host.strip("[]"), port


def collect(
    listen: str,
    *,
    decoder: NetflowDecoder,
    duration: float | None = None,
    window: float = 60.0,
    stop: threading.Event | None = None,
) -> Iterator[Flow]:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((host, port))
    except PermissionError as exc:
        sock.close()
        raise PermissionDenied(f"cannot listen on {listen}: {exc.strerror}") from exc
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {listen}: {exc.strerror}", token=listen) from exc
    sock.settimeout(0.2)
    stitcher = Stitcher(f"netflow:{listen}", window=window)
    started = time.monotonic()
    try:
        while not (stop is not None and stop.is_set()):
            if duration is not None and time.monotonic() - started >= duration:
                break
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            for record in decoder.decode(data, peer[0], time.time()):
                yield from stitcher.add(record)
        yield from stitcher.flush()
    finally:
        sock.close()
