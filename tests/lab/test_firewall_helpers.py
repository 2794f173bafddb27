"""Helpers for the firewall lab tests (no tests here): real probes and an NFLOG collector.

`probe(host, address, port, protocol)` makes one real connection attempt from inside `host`:
TCP connect (accepted / refused by RST / timeout) or a UDP datagram to an echo listener (echoed
= accepted, ICMP port unreachable = refused, silence = timeout). `LogCollector` reads NFLOG
records in the firewall host's namespace on a thread for as long as it is open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from ppsguard.lab.hosts import Host
from ppsguard.model.net import IPAddress
from ppsguard.monitor.nflog import NflogReader, NflogRecord

OUTCOME = {"allow": "accepted", "reject": "refused", "deny": "timeout"}


def probe(
    host: Host, address: IPAddress, port: int, protocol: str, timeout: float = 0.6
) -> tuple[str, int]:
    """One attempt from `host`; returns (outcome, source port)."""

    def attempt() -> tuple[str, int]:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        with socket.socket(family, kind) as sock:
            sock.settimeout(timeout)
            sock.bind(("::" if address.version == 6 else "0.0.0.0", 0))
            source_port = sock.getsockname()[1]
            try:
                sock.connect((str(address), port))
                if protocol == "udp":
                    sock.send(b"ping")
                    sock.recv(64)
            except ConnectionRefusedError:
                return "refused", source_port
            except TimeoutError:
                return "timeout", source_port
            return "accepted", source_port

    return host.call(attempt, timeout=timeout + 10)


class LogCollector:
    """Collect NFLOG records of `group` inside `host` until closed."""

    def __init__(self, host: Host, group: int = 5) -> None:
        self.records: list[NflogRecord] = []
        self._reads = 0  # read passes the reader thread has finished
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(host, group), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("NFLOG reader did not start")
        if self._error:
            raise self._error[0]

    def _run(self, host: Host, group: int) -> None:
        try:
            with host.enter(), NflogReader(group) as reader:
                self._ready.set()
                while not self._stop.is_set():
                    self.records.extend(reader.read(0.2))
                    self._reads += 1
        except BaseException as error:
            self._error.append(error)
            self._ready.set()

    def entries_for(self, source_port: int, port: int, settle: float = 0.3) -> list[str]:
        """Entry ids logged for the attempt from `source_port` to `port`.

        The kernel queues a record on the reader's socket as the packet passes (the reader asks
        for each record at once), so it is there when the attempt returns; it is in `records`
        once the reader thread has made a whole read pass that began after this call."""
        time.sleep(settle)
        wanted = self._reads + 2  # the pass under way may have begun before the call
        deadline = time.monotonic() + 10
        while self._reads < wanted and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self._reads >= wanted, f"the NFLOG reader made no read pass: {self._error}"
        return [
            r.entry_id or r.prefix
            for r in list(self.records)
            if r.source_port == source_port and r.destination_port == port
        ]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> LogCollector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def pps(
    args: list[str], state_dir: str, env: Mapping[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run the real `pps` command with its own state directory and no SSH session."""
    environment = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    environment["PPSGUARD_STATE_DIR"] = state_dir
    environment.update(env or {})
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
        **kwargs,
    )


def ruleset(host: Host) -> str:
    return host.run(["nft", "list", "ruleset"]).stdout
