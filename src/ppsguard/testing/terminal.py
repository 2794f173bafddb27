"""Run a command with its stdout and stderr on a pseudo-terminal, as a person would see it.

For tests of what reaches a terminal (colour, box drawing, escape sequences from hostile text):
`on_terminal(argv)` returns everything the command wrote, decoded. Bounded by a timeout; the
process is killed (by pid) if it overruns.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Mapping, Sequence


def on_terminal(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> str:
    """Run `argv` with stdout and stderr on a new pseudo-terminal; return what it printed."""
    main, child = pty.openpty()
    try:
        process = subprocess.Popen(list(argv), stdout=child, stderr=child, env=env)
    finally:
        os.close(child)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], timeout)
            if not ready:
                process.kill()
                break
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=30)
    finally:
        os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")
