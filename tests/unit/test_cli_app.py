"""The `pps` program's conventions: version, help, exit codes, one-line errors, --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard import __version__
from ppsguard.cli import app as app_module
from ppsguard.errors import InputError, KernelFeatureMissing, PpsError, UsageError


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args], capture_output=True, text=True, timeout=60
    )


def test_version_goes_to_stdout():
    result = pps("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ppsguard {__version__}"


def test_help_lists_the_command_groups():
    result = pps("--help")
    assert result.returncode == 0
    for group in ("port", "sockets", "scan", "registry", "policy", "audit", "lab"):
        assert group in result.stdout


def test_unknown_option_is_a_usage_error():
    result = pps("--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("bad port", file="r.yaml", line=3, column=7), 2),
        (UsageError("unknown service", token="nosuch"), 2),
        (KernelFeatureMissing("no netlink"), 3),
        (PpsError("something failed"), 3),
    ],
)
def test_pps_errors_become_one_line_and_an_exit_code(monkeypatch, capsys, error, code):
    def fail() -> None:
        raise error

    monkeypatch.setattr(app_module, "build_app", lambda _only=None: lambda **_kw: fail())
    assert app_module.main(["anything"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pps: error: ")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch):
    def fail(**_kw: object) -> None:
        raise UsageError("boom")

    monkeypatch.setattr(app_module, "build_app", lambda _only=None: fail)
    with pytest.raises(UsageError):
        app_module.main(["--debug", "anything"])


def test_a_bug_keeps_its_traceback_and_exits_3_not_1(monkeypatch, capsys):
    """Exit 1 means "findings": a crash must not look like an audit that found something."""

    def fail(**_kw: object) -> None:
        raise RuntimeError("an unforeseen state")

    monkeypatch.setattr(app_module, "build_app", lambda _only=None: fail)
    assert app_module.main(["anything"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: an unforeseen state" in err
    last = err.rstrip().splitlines()[-1]
    assert last == "pps: internal error (a bug in pps, please report it with the above)"


def test_an_os_refusal_nothing_checked_is_one_line_with_its_exit_code(tmp_path):
    """Found by a sweep of hostile option values: Path.exists() raises ENAMETOOLONG (it lets
    that errno through), and the traceback ended the run."""
    long = "A" * 3000
    seed = str(Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml")
    for args in (["registry", "init", "-o", long], ["flows", "audit", seed, long]):
        done = subprocess.run(
            [sys.executable, "-m", "ppsguard", *args],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("pps: error:")]
        assert line.endswith("(3000 characters): File name too long"), line
        assert "Traceback" not in done.stderr


def test_a_file_name_with_a_newline_is_written_on_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "registry", "init", "-o", "a\nb.yaml"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a\nb.yaml").exists()
    assert "wrote a\\nb.yaml: " in done.stderr


def test_input_error_names_file_line_column_and_hint():
    error = InputError(
        "unknown network", file="site.yaml", line=12, column=5, token="pop-client",
        hint="did you mean 'pop-clients'?",
    )  # fmt: skip
    text = str(error)
    assert text.startswith("site.yaml:12:5: unknown network")
    assert "'pop-client'" in text
    assert "did you mean 'pop-clients'?" in text
    assert isinstance(error, ValueError)


def test_error_lines_are_folded_and_escaped():
    text = app_module.one_line("nft failed:\nline 3: bad\x1b[2J token\n")
    assert text == "nft failed: | line 3: bad\\x1b[2J token"


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["port", "22"], "port"),
        (["--no-color", "--debug", "scan", "-p", "80"], "scan"),
        (["--help"], None),
        (["--version"], None),
        (["nosuchcommand"], None),
        ([], None),
    ],
)
def test_only_the_command_being_run_is_loaded(args, command):
    assert app_module.command_of(args) == command


def test_a_command_run_alone_does_not_import_the_others():
    code = (
        "import sys; from ppsguard.cli.app import main; main(['port', '22', '--json']); "
        "print('ppsguard.cli.scan' in sys.modules, 'ppsguard.lab.hosts' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_the_command_line_asks_openblas_for_one_thread_unless_told(given, expected):
    """Set before NumPy loads (its threads cost every command ~0.1 s of CPU); a user's value is
    kept. Without one, NumPy loaded after the command line runs no OpenBLAS worker thread: the
    process has one thread (on this 2-core machine NumPy alone starts a second)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = (
        "import ppsguard.cli.app, os, sys\n"
        "assert 'numpy' not in sys.modules\n"
        "import numpy\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    setting, threads = done.stdout.split()
    assert setting == expected
    if given is None:
        assert threads == "1"
