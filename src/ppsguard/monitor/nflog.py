"""A small stdlib reader of NFLOG records (nftables `log group N`) over netlink.

nftables' `log group N prefix "pps:<entry id> "` hands each logged packet to user space over
NETLINK_NETFILTER (subsystem ULOG). `NflogReader(group)` binds that group in the CURRENT network
namespace of the calling thread (enter a lab host first) and yields `NflogRecord`s: the prefix,
the entry id parsed from it, and the packet's addresses and ports. The wire format (parsing
and the configuration requests) is the pure part, in `nflog_wire.py`, tested on its own.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterator

from ppsguard.errors import KernelFeatureMissing, PermissionDenied
from ppsguard.monitor.nflog_wire import (
    NETLINK_NETFILTER,
    NFULA_CFG_CMD,
    NFULA_CFG_MODE,
    NFULA_CFG_QTHRESH,
    NFULA_CFG_TIMEOUT,
    NFULNL_CFG_CMD_BIND,
    NFULNL_COPY_PACKET,
    NflogRecord,
    ack_error,
    config_message,
    parse_messages,
)


class NflogReader:
    """Bind NFLOG group `group` in the calling thread's network namespace and read records."""

    def __init__(self, group: int, copy_bytes: int = 128) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except PermissionError as exc:
            raise PermissionDenied("reading NFLOG needs CAP_NET_ADMIN") from exc
        except OSError as exc:
            raise KernelFeatureMissing(f"no NETLINK_NETFILTER socket: {exc}") from exc
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._request(config_message(group, NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]), 1))
        mode = struct.pack("!IBB", copy_bytes, NFULNL_COPY_PACKET, 0)
        self._request(config_message(group, NFULA_CFG_MODE, mode, 2))
        # deliver each record at once, not after the kernel's default 1 s batching timeout
        self._request(config_message(group, NFULA_CFG_QTHRESH, struct.pack("!I", 1), 3))
        self._request(config_message(group, NFULA_CFG_TIMEOUT, struct.pack("!I", 1), 4))

    def _request(self, message: bytes) -> None:
        self.sock.send(message)
        error = ack_error(self.sock.recv(65536))
        if error == 1:  # EPERM
            raise PermissionDenied("binding an NFLOG group needs CAP_NET_ADMIN")
        if error:
            raise KernelFeatureMissing(f"NFLOG bind failed: errno {error}")

    def read(self, timeout: float) -> Iterator[NflogRecord]:
        """Yield records for at most `timeout` seconds in total."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return
            yield from parse_messages(self.sock.recv(65536))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = ["NflogReader", "NflogRecord", "parse_messages"]
