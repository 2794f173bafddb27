"""Every command's result is on stdout when piped, and stderr holds only diagnostics.

Each test runs the real `pps` in a subprocess with stdout a pipe (as `pps sockets | grep` or
`pps audit > file` would), and checks the result is on stdout, plain (no escape sequences, no
box drawing) and that stderr holds nothing but warnings, notes and progress.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.testing.terminal import on_terminal

SEED = str(Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml")
BOX = set("┃│─━╇┏┓┗┛╭╮╰╯║═")
DIAGNOSTIC_PREFIXES = ("warning:", "seed ", "wrote ")


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def assert_piped_result(done: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert done.returncode in (codes or (0,)), done.stdout + done.stderr
    assert done.stdout.strip(), "no result on stdout"
    assert "\x1b" not in done.stdout and not BOX & set(done.stdout), done.stdout[:2000]
    for line in done.stderr.splitlines():
        assert line.startswith(DIAGNOSTIC_PREFIXES), f"not a diagnostic: {line!r}"
    return done.stdout


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port() -> None:
    out = assert_piped_result(pps("port", "22"))
    assert out.startswith("22/tcp") and "ssh" in out
    assert json.loads(assert_piped_result(pps("port", "22", "--json")))[0]["port"] == 22


def test_sockets_every_format(listener: int) -> None:
    port = str(listener)
    table = assert_piped_result(pps("sockets", "--tcp"))
    header = table.splitlines()[0].split()
    assert header[:5] == ["proto", "local", "remote", "state", "exposure"]
    (row,) = [line for line in table.splitlines() if f"127.0.0.1:{port} " in line]
    assert len(row.split()) == len(header)  # awk-friendly: a field per column
    grep = subprocess.run(
        f"{sys.executable} -m ppsguard sockets --tcp | grep -F '127.0.0.1:{port} '",
        shell=True,  # the pipeline is the point of the test
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LISTEN" in grep.stdout
    rows = json.loads(assert_piped_result(pps("sockets", "--port", port, "--json")))
    assert [r["local_port"] for r in rows] == [listener]
    lines = assert_piped_result(pps("sockets", "--port", port, "--jsonl")).splitlines()
    assert [json.loads(line)["local_port"] for line in lines] == [listener]
    csv_text = assert_piped_result(pps("sockets", "--port", port, "--csv"))
    got = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["local_port"] for r in got] == [port]
    pretty = assert_piped_result(pps("sockets", "--port", port, "--json", "--pretty"))
    assert pretty.startswith("[\n  {\n") and json.loads(pretty)[0]["inode"] == rows[0]["inode"]


def test_scan_every_format(listener: int, tmp_path: Path) -> None:
    target = ["scan", "127.0.0.1", "-p", str(listener), "--connect"]
    out = assert_piped_result(pps(*target))
    assert f"{listener}/tcp" in out and "open" in out and " up in " in out
    doc = json.loads(assert_piped_result(pps(*target, "--json")))
    assert doc["hosts"][0]["ports"][0]["port"] == listener
    lines = assert_piped_result(pps(*target, "--jsonl")).splitlines()
    assert {json.loads(line)["type"] for line in lines} == {"port", "host"}
    xml = assert_piped_result(pps(*target, "-oX", "-"))
    assert xml.startswith("<?xml") and f'portid="{listener}"' in xml
    grepable = assert_piped_result(pps(*target, "-oG", "-"))
    assert f"{listener}/open/tcp" in grepable
    written = tmp_path / "scan.xml"
    table = assert_piped_result(pps(*target, "-oX", str(written)))
    assert f"{listener}/tcp" in table and written.read_text().startswith("<?xml")
    dry = assert_piped_result(pps(*target, "--dry-run"))
    assert "dry run" in dry


def test_audit(tmp_path: Path) -> None:
    out = assert_piped_result(pps("audit", SEED, "--host", "building", "--no-scan"), 0, 1)
    assert out.startswith("audit of")
    document = json.loads(
        assert_piped_result(pps("audit", SEED, "--host", "building", "--no-scan", "--json"), 0, 1)
    )
    assert "findings" in document and "doors" in document


def test_registry_commands() -> None:
    assert json.loads(assert_piped_result(pps("registry", "schema")))["type"] == "object"
    assert assert_piped_result(pps("registry", "validate", SEED)).startswith("valid:")
    show = assert_piped_result(pps("registry", "show", SEED))
    assert show.splitlines()[0].split()[:3] == ["#", "entry", "action"]
    assert "pop3-others" in show
    assert json.loads(assert_piped_result(pps("registry", "show", SEED, "--json")))["rules"]


def test_registry_init_to_stdout() -> None:
    out = assert_piped_result(pps("registry", "init", "--from-local", "--host", "here"))
    assert "version: 1" in out and "here" in out


def test_policy_explain_lint_compile() -> None:
    explain = pps("policy", "explain", SEED, "--from", "198.18.0.11", "--to-port", "110/tcp")
    assert assert_piped_result(explain).startswith("ALLOW")
    lint = assert_piped_result(pps("policy", "lint", SEED), 0, 1)
    assert "findings," in lint
    compiled = assert_piped_result(pps("policy", "compile", SEED))
    assert "table inet ppsguard" in compiled


def test_lab_status() -> None:
    done = pps("lab", "status")
    assert_piped_result(done)
    assert json.loads(assert_piped_result(pps("lab", "status", "--json"))) is not None


def test_errors_go_to_stderr_only() -> None:
    done = pps("port", "nosuchservice")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("pps: error:")


COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])[;m]")


def test_terminal_gets_colour_and_boxes_unless_disabled() -> None:
    """On a terminal: Rich panels and colour; with --no-color or NO_COLOR: no colour codes."""
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    argv = [sys.executable, "-m", "ppsguard", "port", "23"]
    styled = on_terminal(argv, env=base)
    assert COLOUR.search(styled) and BOX & set(styled)
    for args, env in ((["--no-color"], base), ([], {**base, "NO_COLOR": "1"})):
        plain = on_terminal([*argv, *args], env=env)
        assert "23/tcp" in plain and not COLOUR.search(plain), plain


def test_terminal_summary_and_groups_only_on_a_terminal(listener: int) -> None:
    shown = on_terminal([sys.executable, "-m", "ppsguard", "sockets", "--port", str(listener)])
    assert "Listening loopback-only" in shown and "1 door open: 1 loopback-only" in shown


ALL_STATES = ("--connect", "--all-states")


def test_reader_going_away_is_not_an_error() -> None:
    """`pps scan ... | head -1`: exit 0, no traceback, nothing but diagnostics on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ppsguard", "scan", "127.0.0.1", "-p", "1-3000", *ALL_STATES],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("127.0.0.1")
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    for line in process.stderr.read().splitlines():
        assert line.startswith(DIAGNOSTIC_PREFIXES), line
    process.stderr.close()
