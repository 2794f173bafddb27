"""`pps sockets` end to end on loopback sockets of this process: JSON/CSV shapes, usage errors."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from ppsguard.cli.app import app, main


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_json_record(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = CliRunner().invoke(app, ["sockets", "--tcp", "--port", str(port), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["local_address"] == "127.0.0.1"
    assert (row["state"], row["role"], row["exposure"]) == ("LISTEN", "passive", "loopback")
    assert row["owners"][0]["pid"] == os.getpid()
    assert set(row["owners"][0]) == {"pid", "comm", "exe", "cmdline", "user", "uid"}
    assert (row["schema"], row["version"]) == ("ppsguard.socket", 1)
    assert row["netns"]["inode"] == os.stat("/proc/self/ns/net").st_ino


def test_jsonl_and_csv(listener: socket.socket) -> None:
    port = str(listener.getsockname()[1])
    jsonl = CliRunner().invoke(app, ["sockets", "--port", port, "--jsonl"])
    assert [json.loads(line)["local_port"] for line in jsonl.stdout.splitlines()] == [int(port)]
    table = CliRunner().invoke(app, ["sockets", "--port", port, "--csv", "--no-owners"])
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [(r["local_port"], r["owners"], r["exposure"]) for r in rows] == [(port, "", "loopback")]


def test_piped_table_goes_to_stdout(listener: socket.socket) -> None:
    """Piped: one plain ss-like table on stdout (a header and one line per socket), no summary."""
    port = str(listener.getsockname()[1])
    result = CliRunner().invoke(app, ["sockets", "--port", port])
    assert result.exit_code == 0
    assert result.stderr == ""
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "proto", "local", "remote", "state", "exposure", "process", "user", "service"
    ]  # fmt: skip
    assert row.split()[:5] == ["tcp", f"127.0.0.1:{port}", "*", "LISTEN", "loopback"]


@pytest.mark.parametrize(
    "argv",
    [
        ["sockets", "--listening", "--active"],
        ["sockets", "--json", "--csv"],
        ["sockets", "--netns", "x", "--all-netns"],
        ["sockets", "--port", "70000"],
        ["sockets", "--netns", "no-such-namespace-here"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("pps: error: ")
    assert len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("show_netns", [False, True])
def test_plain_widths_equal_measured_widths(listener: socket.socket, show_netns: bool) -> None:
    """The plain table's widths computed from lengths give the same lines as measuring."""
    from ppsguard.cli.sockets import _plain_widths, _table_cells
    from ppsguard.inventory import collect
    from ppsguard.report.streams import table_lines

    inventory = collect(listening=True, active=True, all_netns=show_netns)
    records = list(inventory.records)
    header = [f"c{i}" for i in range(9 if show_netns else 8)]

    def rows() -> list[list[str]]:
        out = []
        for r in records:
            cells = _table_cells(r, inventory.owners_resolved, show_netns)
            out.append(
                [*cells[:4], str(r.exposure) if r.role.value == "passive" else "-", *cells[4:]]
            )
        return out

    widths = _plain_widths(records, inventory.owners_resolved, show_netns)
    assert list(table_lines(header, rows, widths=widths)) == list(table_lines(header, rows))
