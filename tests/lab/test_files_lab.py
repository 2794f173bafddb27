"""The atomic writer under a hostile or exhausted machine: a full disk, a second user, no access.

Needs root (mount, a second user), hence the `lab` marker: a real 64 KiB tmpfs for the disk-full
cases (mounted in a temporary folder and unmounted afterwards), the real user `nobody` planting a
symlink in a world-writable sticky folder, and `nobody` writing where it may not.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppsguard.errors import EXIT_RUNTIME, RuntimeFailure
from ppsguard.files import write_all, write_atomic

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-building.yaml"
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PAGE = 4096


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs, unmounted after the test whatever happened."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "ppsguard-test", str(mount_point)],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def public_folder() -> Iterator[Path]:
    """A world-writable sticky folder under /tmp that `nobody` can reach (like /tmp itself)."""
    folder = Path(tempfile.mkdtemp(prefix="ppsguard-sticky-", dir="/tmp"))
    folder.chmod(0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fill(disk: Path, leave_pages: int = 0) -> None:
    """Fill `disk` to the last page, then give back `leave_pages` pages."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * PAGE):
                pass
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - size % PAGE - leave_pages * PAGE))


def pps(
    *args: str | Path, as_nobody: bool = False, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [*(NOBODY if as_nobody else []), sys.executable, "-m", "ppsguard", *map(str, args)]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_full_disk_keeps_the_previous_file(tiny_disk: Path) -> None:
    target = tiny_disk / "audit.html"
    write_atomic(target, "previous report\n")
    with pytest.raises(RuntimeFailure) as caught:
        write_atomic(target, "x" * 200_000)
    assert caught.value.exit_code == EXIT_RUNTIME
    assert str(caught.value) == f"cannot write {target}: no space left on the device"
    assert target.read_text() == "previous report\n"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["audit.html"]


def test_full_disk_changes_neither_of_two_files(tiny_disk: Path) -> None:
    v4, v6 = tiny_disk / "rules.v4", tiny_disk / "rules.v6"
    write_all([(v4, "old v4\n"), (v6, "old v6\n")])
    fill(tiny_disk, leave_pages=1)  # room for the new rules.v4, not for rules.v6
    with pytest.raises(RuntimeFailure):
        write_all([(v4, "new v4\n"), (v6, "new v6\n" * 2000)])
    assert (v4.read_text(), v6.read_text()) == ("old v4\n", "old v6\n")
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "rules.v4", "rules.v6"]


def test_policy_compile_iptables_on_a_full_disk_is_all_or_nothing(tiny_disk: Path) -> None:
    out = tiny_disk / "rules"
    assert pps("policy", "compile", SEED, "--target", "iptables", "-o", out).returncode == 0
    before = {p.name: p.read_text() for p in tiny_disk.iterdir()}
    fill(tiny_disk, leave_pages=1)
    done = pps("policy", "compile", SEED, "--target", "iptables", "-o", out, "--log-group", "7")
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().endswith("no space left on the device")
    assert {p.name: p.read_text() for p in tiny_disk.iterdir() if p.name != "filler"} == before


def test_scan_to_a_full_disk_prints_the_result_and_exits_3(tiny_disk: Path) -> None:
    xml = tiny_disk / "scan.xml"
    xml.write_text("<previous/>\n")
    fill(tiny_disk)
    done = pps("scan", "--connect", "--json", "-oX", xml, "127.0.0.1", "-p", "1")
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["hosts"][0]["address"] == "127.0.0.1"
    assert done.stderr.strip().splitlines()[-1] == (
        f"pps: error: cannot write {xml}: no space left on the device"
    )
    assert xml.read_text() == "<previous/>\n"


def test_a_symlink_planted_by_another_user_is_never_followed(
    public_folder: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.conf"  # a file root cares about, outside the public folder
    victim.write_text("precious\n")
    planted = public_folder / "seed.nft"
    subprocess.run([*NOBODY, "ln", "-s", str(victim), str(planted)], check=True)
    assert planted.is_symlink() and planted.lstat().st_uid != 0
    done = pps("policy", "compile", SEED, "-o", planted, cwd="/")
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n"
    assert not planted.is_symlink() and planted.stat().st_uid == 0
    assert "table inet ppsguard" in planted.read_text()
    assert sorted(p.name for p in public_folder.iterdir()) == ["seed.nft"]


def test_permission_denied_is_a_runtime_failure_and_keeps_the_result(
    public_folder: Path,
) -> None:
    closed = public_folder / "root-only"
    closed.mkdir(mode=0o755)  # root's, readable by all, writable by root only
    target = closed / "scan.xml"
    done = pps(
        "scan",
        "--connect",
        "--json",
        "-oX",
        target,
        "127.0.0.1",
        "-p",
        "1",
        as_nobody=True,
        cwd="/",
    )
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["hosts"][0]["address"] == "127.0.0.1"
    assert done.stderr.strip().splitlines()[-1] == (
        f"pps: error: cannot write {target}: permission denied"
    )
    assert not target.exists()


def test_errno_table_covers_disk_quota() -> None:
    from ppsguard.files import error_for

    quota = error_for(Path("/x/y"), OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert isinstance(quota, RuntimeFailure) and "quota" in str(quota)


def test_a_symlink_planted_at_the_temporary_name_is_never_followed(
    public_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old writers used `.NAME.PID.tmp`: guessable. Even a guessed name is not followed."""
    import itertools

    import ppsguard.files

    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    guessed = public_folder / ".seed.nft.0000000000000000.tmp"
    subprocess.run([*NOBODY, "ln", "-s", str(victim), str(guessed)], check=True)
    names = itertools.chain(["0000000000000000"], itertools.repeat("1111111111111111"))
    monkeypatch.setattr(ppsguard.files.secrets, "token_hex", lambda _n: next(names))
    write_atomic(public_folder / "seed.nft", "table inet ppsguard {}\n")
    assert victim.read_text() == "precious\n"
    assert guessed.is_symlink()  # left alone: it is not ours
    assert (public_folder / "seed.nft").read_text() == "table inet ppsguard {}\n"


def test_parquet_to_a_full_disk_keeps_the_previous_file(tiny_disk: Path) -> None:
    import ipaddress

    from ppsguard.flows.columnar import write_parquet
    from ppsguard.model.flows import Flow

    out = tiny_disk / "flows.parquet"
    out.write_bytes(b"previous")
    base = ipaddress.ip_address("198.18.0.1")
    flows = [
        Flow(
            ts=float(i),
            orig_h=base + i,
            orig_p=40000 + i % 20000,
            resp_h=base,
            resp_p=443,
            proto="tcp",
            uid=f"C{i:08d}",
        )
        for i in range(20_000)
    ]
    with pytest.raises(RuntimeFailure, match="no space left"):
        write_parquet(flows, out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["flows.parquet"]


def test_a_device_node_is_never_replaced(tmp_path: Path) -> None:
    """`-o /dev/null` as root renamed a regular file over the system's null device."""
    import stat

    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    for args in (["registry", "init", "-o", str(null), "--force"], ["policy", "compile",
                 str(SEED), "--output", str(null)]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "ppsguard", *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert "it is a character device, not a regular file" in done.stderr
        assert stat.S_ISCHR(null.lstat().st_mode)
