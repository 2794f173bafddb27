"""A busy host for benchmarks: thousands of connected loopback sockets held open in a lab host.

    workers = hold_socket_pairs(lab["bench"], sockets=40_000)
    ...                                   # measure pps sockets, ss, the store ...
    release(workers)

Each worker process opens `sockets / 2 / workers` client-server pairs to its own listener on
127.0.0.1 inside the host's namespace, says READY, and holds them until its stdin closes.
Traffic stays on the lab host's loopback.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

from ppsguard.lab.hosts import Host

BASE_PORT = 7600
WORKER = r"""
import resource, socket, sys
port, pairs = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
listener = socket.socket()
listener.bind(("127.0.0.1", port))
listener.listen(4096)
kept = []
for _ in range(pairs):
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    server, _ = listener.accept()
    kept += [client, server]
print("READY", flush=True)
sys.stdin.read()  # hold the sockets until the benchmark closes our stdin (or kills us)
"""


def hold_socket_pairs(
    host: Host, sockets: int, *, workers: int = 4, base_port: int = BASE_PORT
) -> list[subprocess.Popen[str]]:
    """Start the workers inside `host` and wait until all hold their sockets."""
    pairs = sockets // 2 // workers
    started = [
        host.popen(
            [sys.executable, "-c", WORKER, str(base_port + index), str(pairs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for index in range(workers)
    ]
    for process in started:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY"):
            release(started)
            raise RuntimeError(f"a worker failed to open its sockets: {line!r}")
    return started


def release(workers: list[subprocess.Popen[str]]) -> None:
    """Close the workers' stdin (they exit and their sockets go) and wait for them."""
    for process in workers:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
    for process in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
