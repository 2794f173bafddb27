"""Hostile text from outside the program never reaches the terminal raw, nor as Rich markup.

A corpus of hostile strings goes through every command's human output, for real: processes
renamed with prctl(PR_SET_NAME) and an argv[0] of our choosing listening on loopback (`pps
sockets`), a banner server on loopback (`pps scan -sV`), an nmap XML file (`pps scan
--from-nmap`), and a registry in a folder whose name is hostile, with hostile text in its
entries (`registry show`, `policy explain`, `policy lint`). Each command runs piped and on a
pseudo-terminal; neither output may hold an ESC byte that the program did not write itself, a
BEL, an OSC hyperlink, or lose the literal `[link=...]` text to markup.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.report.sanitize import csv_cell, visible
from ppsguard.testing.terminal import on_terminal

CORPUS = (
    "a\x1b[8m",
    "\x1b]0;PWNED\x07",
    "\x1b[2J",
    "[link=http://x]",
    "[blink]b",
    "=HYPERLINK(1)",
    "\u202eevil",
)
RAW_SEQUENCES = ("\x1b[8m", "\x1b]0;", "\x07", "\x1b[2J", "\x1b]8;", "\u202e", "\x9b")


def test_visible_escapes_every_control_and_keeps_text() -> None:
    assert visible("a\x1b[8mb") == "a\\x1b[8mb"
    assert visible("\x1b]0;PWNED\x07") == "\\x1b]0;PWNED\\x07"
    assert visible("nul\x00") == "nul\\x00"
    assert visible("\u202eevil") == "\\u202eevil"
    assert visible("lone \udcff") == "lone \\udcff"
    assert visible("[link=http://x]ok[/link] é ✓") == "[link=http://x]ok[/link] é ✓"
    assert visible("two\nlines", keep_newlines=True) == "two\nlines"
    assert visible("two\nlines") == "two\\nlines"


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cell_guards_formulas(lead: str) -> None:
    cell = csv_cell(lead + "HYPERLINK(1)")
    assert cell.startswith("'") and "\t" not in cell and "\r" not in cell
    assert csv_cell(-1) == "-1" and csv_cell(None) == ""


def _run(args: list[str], *, terminal: bool) -> str:
    """`pps ARGS` piped (stdout as a pipe) or on a pseudo-terminal; returns stdout+stderr."""
    command = [sys.executable, "-m", "ppsguard", *args]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["COLUMNS"] = "200"
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout + done.stderr
    return on_terminal(command, env=env)


def _assert_harmless(text: str, *, terminal: bool) -> None:
    for raw in RAW_SEQUENCES:
        assert raw not in text, (raw, text[:2000])
    if not terminal:
        assert "\x1b" not in text, text[:2000]


@pytest.fixture
def renamed_listeners() -> Iterator[list[int]]:
    """One loopback listener per corpus string: comm set by prctl, argv[0] set by exec."""
    code = textwrap.dedent(
        """
        import ctypes, socket, sys, time
        name = sys.argv[1].encode("utf-8")[:15]
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        print(s.getsockname()[1], flush=True)
        time.sleep(60)
        """
    )
    processes = []
    ports = []
    try:
        for hostile in CORPUS:
            process = subprocess.Popen(
                [hostile, "-c", code, hostile],
                executable=sys.executable,
                stdout=subprocess.PIPE,
                text=True,
            )
            processes.append(process)
            assert process.stdout is not None
            ports.append(int(process.stdout.readline()))
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_sockets_table_and_csv(renamed_listeners: list[int], terminal: bool) -> None:
    assert ctypes.CDLL(None).prctl  # the mechanism the fixture relies on
    out = _run(["sockets", "--tcp"], terminal=terminal)
    _assert_harmless(out, terminal=terminal)
    assert "a\\x1b[8m" in out and "\\x1b[2J" in out and "[link=http://x]" in out
    for port in renamed_listeners:  # no row hidden: every listener is listed
        assert f"127.0.0.1:{port}" in out
    csv_text = _run(["sockets", "--tcp", "--csv"], terminal=False)
    _assert_harmless(csv_text, terminal=False)
    assert ",=HYPERLINK" not in csv_text and "'=HYPERLINK(1)" in csv_text


@pytest.fixture
def banner_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)
    banner = (
        b"SSH-2.0-[link=https://evil.example/]OpenSSH[/link]_\x1b[8m\x1b]0;PWNED\x07 "
        b"[blink]x\xe2\x80\xae\r\n"
    )
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                conn.sendall(banner)
                conn.settimeout(1)
                conn.recv(1024)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # close() alone does not wake a blocked accept()
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_scan_banner(banner_port: int, terminal: bool) -> None:
    args = ["scan", "127.0.0.1", "-p", str(banner_port), "--connect", "-sV"]
    out = _run(args, terminal=terminal)
    _assert_harmless(out, terminal=terminal)
    assert f"{banner_port}/tcp" in out and "open" in out


def test_scan_from_hostile_nmap_xml(tmp_path: Path) -> None:
    xml = tmp_path / "hostile.xml"
    xml.write_text(
        '<?xml version="1.0"?><nmaprun scanner="nmap" start="1700000000" args="x">'
        '<host><status state="up" reason="syn-ack"/>'
        '<address addr="198.18.0.9" addrtype="ipv4"/>'
        '<hostnames><hostname name="[link=http://x]h&#8238;" type="user"/></hostnames>'
        '<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>'
        '<service name="ssh" product="[blink]Open&#8238;SSH" version="=HYPERLINK(1)"/>'
        "</port></ports></host></nmaprun>",
        encoding="utf-8",
    )
    for terminal in (False, True):
        out = _run(["scan", "--from-nmap", str(xml)], terminal=terminal)
        _assert_harmless(out, terminal=terminal)
        assert "[blink]Open" in out and "[link=http://x]h" in out and "=HYPERLINK(1)" in out


@pytest.fixture
def hostile_registry(tmp_path: Path) -> Path:
    folder = tmp_path / "reg\x1b[2J\x1b]0;PWNED\x07[link=x]"
    folder.mkdir()
    path = folder / "hostile.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            default: deny
            networks:
              clients:
                description: "\\e]0;PWNED\\a [link=http://x]click[/link] \\e[2J"
                addresses: [198.18.0.11]
            hosts:
              building:
                provides:
                  - id: pop3
                    service: pop3
                    from: [clients]
                    purpose: "\\e[8m[blink]hidden\\u202e =HYPERLINK(1) nul\\0"
            """
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_registry_texts(hostile_registry: Path, terminal: bool) -> None:
    registry = str(hostile_registry)
    for args in (
        ["registry", "show", registry],
        ["registry", "validate", registry],
        ["policy", "explain", registry, "--from", "198.18.0.11", "--to-port", "110/tcp"],
        ["policy", "lint", registry],
        ["registry", "validate", registry + "-missing"],  # the error line names the file
    ):
        out = _run(args, terminal=terminal)
        _assert_harmless(out, terminal=terminal)
        if args[1] != "validate" or args[2].endswith("-missing"):  # these name the file
            assert "reg\\x1b[2J\\x1b]0;PWNED\\x07[link=x]" in out, (args, out)
    explained = _run(
        ["policy", "explain", registry, "--from", "198.18.0.11", "--to-port", "110/tcp"],
        terminal=terminal,
    )
    assert "\\x1b[8m[blink]hidden\\u202e =HYPERLINK(1) nul\\x00" in explained
