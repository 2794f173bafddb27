"""The one atomic writer (`ppsguard.files`) and the commands that write files through it.

Disk-full, symlink-planting and permission cases need root and a second user: see
tests/lab/test_files_lab.py. Here: replace, refuse, clean up, and the CLI's "result first, then
one error line" behaviour, run as a user runs it (subprocess).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.errors import EXIT_BAD_INPUT, InputError, PpsError
from ppsguard.files import write_all, write_atomic

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-building.yaml"


def pps(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "ppsguard", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_atomic(target, "first\n")
    write_atomic(target, b"second\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    assert target.stat().st_mode & 0o777 == 0o644 & ~_umask()
    write_atomic(target, "private\n", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600
    write_atomic(target, "unsynced\n", sync=False)  # atomic still, just not fsynced
    assert target.read_text() == "unsynced\n" and len(list(tmp_path.iterdir())) == 1
    target.chmod(0o640)
    write_atomic(target, "third\n")  # a replaced file keeps its permissions
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_text() == "third\n"


def test_relative_path_writes_in_the_working_folder(tmp_path: Path) -> None:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        write_atomic("plain.txt", "x")
    finally:
        os.chdir(cwd)
    assert (tmp_path / "plain.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("missing/x.xml", "the folder"),
        ("a-folder", "it is a folder"),
        ("a-file/x.xml", "not a folder"),
    ],
)
def test_bad_paths_are_input_errors_that_name_the_file(
    tmp_path: Path, relative: str, message: str
) -> None:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("keep")
    with pytest.raises(InputError) as caught:
        write_atomic(tmp_path / relative, "data")
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert message in str(caught.value) and str(tmp_path / relative) in str(caught.value)
    assert (tmp_path / "a-file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]


def test_write_all_is_all_or_nothing_when_one_target_is_bad(tmp_path: Path) -> None:
    v4, v6 = tmp_path / "rules.v4", tmp_path / "rules.v6"
    v4.write_text("old v4")
    v6.mkdir()  # cannot be replaced by a file
    with pytest.raises(PpsError):
        write_all([(v4, "new v4"), (v6, "new v6")])
    assert v4.read_text() == "old v4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.v4", "rules.v6"]


def test_write_all_undoes_earlier_renames_when_a_later_one_fails(tmp_path: Path) -> None:
    """The rename step itself failing (target name turned into a folder after staging)."""
    import ppsguard.files as files

    new, first, second = tmp_path / "0-new.txt", tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old a")
    staged = [files._stage(p, f"new {p.name}", None) for p in (new, first, second)]
    second.mkdir()
    (second / "inside").write_text("x")  # a non-empty folder: rename over it fails
    try:
        with pytest.raises(PpsError):
            files._commit(staged)
    finally:
        for item in staged:
            item.discard()
    assert first.read_text() == "old a"  # put back from its hard-link backup
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # the new one gone


def test_a_planted_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "out.nft"
    target.symlink_to(victim)
    write_atomic(target, "table inet ppsguard {}\n")
    assert victim.read_text() == "precious"
    assert not target.is_symlink() and target.read_text() == "table inet ppsguard {}\n"


@pytest.mark.parametrize("linked", [False, True])
def test_a_fifo_or_a_link_to_one_is_refused_and_left_as_it_is(tmp_path: Path, linked: bool) -> None:
    """Renaming over a FIFO, a device or a socket replaces the node itself (/dev/null as root,
    or /dev/stdout, a link to /proc/self/fd/1): found when a sweep of option values wrote a
    draft registry over this machine's /dev/zero. A device node needs root: test_files_lab.py."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if linked:
        target = tmp_path / "link"
        target.symlink_to(fifo)
    with pytest.raises(InputError, match="it is a FIFO \\(named pipe\\), not a regular file"):
        write_atomic(target, "data")
    assert fifo.is_fifo() and target.is_symlink() == linked
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({fifo.name, target.name})
    done = pps("registry", "init", "-o", target, "--force")
    assert done.returncode == EXIT_BAD_INPUT and fifo.is_fifo()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_scan_into_a_missing_folder_prints_the_result_then_one_error_line(tmp_path: Path) -> None:
    port = _closed_port()
    missing = tmp_path / "missing" / "x.xml"
    done = pps("scan", "--connect", "-oX", missing, "127.0.0.1", "-p", str(port), "--json")
    assert done.returncode == 2, done.stderr
    document = json.loads(done.stdout)
    assert document["schema"] == "ppsguard.scan"
    assert document["hosts"][0]["address"] == "127.0.0.1"
    errors = [line for line in done.stderr.splitlines() if line.startswith("pps: error:")]
    assert errors == [
        f"pps: error: cannot write {missing}: the folder {missing.parent} does not exist"
    ]
    assert "Traceback" not in done.stderr
    table = pps("scan", "--connect", "-oX", tmp_path, "127.0.0.1", "-p", str(port))
    assert table.returncode == 2
    assert "127.0.0.1" in table.stdout + table.stderr  # the result, whichever stream it is on
    assert (
        table.stderr.rstrip().splitlines()[-1]
        == f"pps: error: cannot write {tmp_path}: it is a folder"
    )


def test_scan_writes_xml_and_grepable_after_the_result(tmp_path: Path) -> None:
    port = _closed_port()
    xml, grepable = tmp_path / "scan.xml", tmp_path / "scan.gnmap"
    done = pps("scan", "--connect", "-oX", xml, "-oG", grepable, "127.0.0.1", "-p", str(port))
    assert done.returncode == 0, done.stderr
    assert "<nmaprun" in xml.read_text() and "127.0.0.1" in grepable.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.gnmap", "scan.xml"]


def test_policy_compile_iptables_writes_both_files_or_neither(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    done = pps("policy", "compile", SEED, "--target", "iptables", "-o", out)
    assert done.returncode == 0, done.stderr
    v4, v6 = Path(f"{out}.v4"), Path(f"{out}.v6")
    assert "*filter" in v4.read_text() and "*filter" in v6.read_text()
    old_v4 = v4.read_text()
    v6.unlink()
    v6.mkdir()
    failed = pps("policy", "compile", SEED, "--target", "iptables", "-o", out)
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"pps: error: cannot write {v6}: it is a folder"
    assert v4.read_text() == old_v4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules.v4", "rules.v6"]


def test_registry_init_keeps_the_draft_when_the_file_fails(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "registry.yaml"
    done = pps("registry", "init", "--from-local", "--host", "here", "-o", missing)
    assert done.returncode == 2, done.stderr
    assert "hosts:" in done.stdout  # the draft was printed instead of lost
    assert done.stderr.strip().splitlines()[-1].startswith(f"pps: error: cannot write {missing}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_audit_writes_every_report_it_can_then_says_which_failed(tmp_path: Path) -> None:
    missing, markdown = tmp_path / "no" / "audit.html", tmp_path / "audit.md"
    done = pps("audit", "--no-scan", "--json", "--html", missing, "--markdown", markdown)
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["schema"] == "ppsguard.audit"  # the findings, not lost
    assert markdown.read_text().startswith("#") and f"wrote {markdown}" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"pps: error: cannot write {missing}: the folder {missing.parent} does not exist"


def test_scan_files_are_written_even_when_stdout_closes_early(tmp_path: Path) -> None:
    """`pps scan -oX x.xml ... --json | head -c 100`: the reader leaves, the file is there."""
    xml = tmp_path / "scan.xml"
    argv = [sys.executable, "-m", "ppsguard", "scan", "--connect", "--all-states", "--json"]
    argv += ["-oX", str(xml), "127.0.0.1", "-p", "1-3000"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        assert process.stdout.read(100).startswith(b"{")
        process.stdout.close()
        process.wait(120)
    assert xml.read_text().count("<port ") == 3000


def test_atomic_file_streams_and_keeps_the_old_file_when_the_block_fails(tmp_path: Path) -> None:
    from ppsguard.files import atomic_file

    target = tmp_path / "flows.parquet"
    with atomic_file(target) as handle:
        handle.write(b"first")
    assert target.read_bytes() == b"first"

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted), atomic_file(target) as handle:
        handle.write(b"half of a second")
        raise Interrupted
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["flows.parquet"]
