"""Helpers for the `pps watch` lab tests (no tests here): a real watch process and its lines.

`Watcher(host, registry)` starts `pps watch --jsonl` inside the host's namespace as a separate
process, collects its JSON lines (with arrival times) on a thread, and stops it with SIGTERM.
Each pipe has exactly one reader: stdout the line collector, stderr its own thread. Stopping
waits for the process and then for both readers to reach end of file, so no line is lost and
no pipe is closed under a thread still reading it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ppsguard.lab.hosts import Host
from ppsguard.testing.watching import watch_sources_open

Record = dict[str, Any]


class Watcher:
    def __init__(self, host: Host, registry: Path | None = None, *extra: str) -> None:
        args = [sys.executable, "-m", "ppsguard", "watch", "--netns", host.netns, "--jsonl"]
        if registry is not None:
            args += [str(registry), "--host", "building"]
        args += list(extra)
        env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.records: list[tuple[float, Record]] = []
        self.stderr = ""
        self.bad_lines: list[str] = []
        self._stderr_parts: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        self._ready(host)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines.append(line)
                continue
            self.records.append((time.monotonic(), record))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr_parts.append(line)

    def _ready(self, host: Host) -> None:
        """Wait until the watch has loaded its tracking table and opened its sources
        (`watch_sources_open`)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if watch_sources_open(host):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"pps watch did not start: {self.stderr}")

    def alerts(self, kind: str | None = None) -> list[Record]:
        return [
            r for _, r in list(self.records) if r["type"] == "alert" and kind in (None, r["kind"])
        ]

    def events(self, predicate: Callable[[Record], bool] = lambda _r: True) -> list[Record]:
        return [r for _, r in list(self.records) if r["type"] == "event" and predicate(r)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def stderr_so_far(self) -> str:
        """What the watch has written to its standard error until now."""
        return "".join(list(self._stderr_parts))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        self._stderr_reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.stderr = "".join(self._stderr_parts)
        return self.process.returncode

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
