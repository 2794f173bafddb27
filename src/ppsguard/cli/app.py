"""The `pps` program: global options, command registration, and the error-to-exit-code boundary.

Every command module exposes `register(app)`; this file only wires them together. A PpsError
becomes one line on stderr and its exit code (2 bad input, 3 runtime failure); `--debug` shows the
traceback instead.

Start-up matters (a loopback scan of every port takes about a second): `main` registers only the
command module that is being run, so `pps port 22` never imports the scanner or the lab
(`import ppsguard.cli.app` with every module: 0.20-0.30 s; with one: 0.14-0.22 s, measured
2026-11-26). `app` (used by tests and `--help`) has every command.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Annotated

import typer

from ppsguard import __version__
from ppsguard.cli import output
from ppsguard.errors import EXIT_BAD_INPUT, EXIT_RUNTIME, PpsError, os_failure

COMMAND_MODULES = (
    "port",
    "sockets",
    "scan",
    "registry",
    "policy",
    "audit",
    "watch",
    "flows",
    "lab",
    "history",
    "diff",
    "fleet",
    "store",
    "harden",
    "serve",
)
_GLOBAL_FLAGS = frozenset({"--no-color", "--debug", "--pretty"})
_ANYWHERE_FLAGS = ("--no-color", "--pretty")  # accepted after the command too

_new_app = functools.partial(
    typer.Typer,
    name="pps",
    help=(
        "ppsguard — the guard of this machine's Ports, Protocols & Services.\n\n"
        "Know what is open (sockets), see it from outside (scan), document it (registry), "
        "enforce it (policy), verify it (audit), turn off what is not needed (harden), watch it "
        "live (watch) or in captured traffic "
        "(flows), remember every run (--store, history, diff, fleet), show it all in a browser "
        "(serve). The result goes to "
        "stdout in every format "
        "(tables, --json, --jsonl, --csv); warnings, errors and progress go to stderr. Colour "
        "and box drawing only on a terminal. Exit codes: 0 clean, 1 findings or "
        "differences, 2 bad input or usage, 3 runtime failure (permission, kernel feature)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug: dict[str, bool] = {"on": False}


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"ppsguard {__version__}\n")
        raise typer.Exit(0)


def _global_options(
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (NO_COLOR is honoured too).")
    ] = False,
    pretty: Annotated[
        bool,
        typer.Option("--pretty", help="Indented JSON even when stdout is not a terminal."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error instead of one line.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    output.set_no_color(no_color)
    output.set_pretty(pretty)
    _debug["on"] = debug


def build_app(only: str | None = None) -> typer.Typer:
    """The `pps` app with every command, or with only the command module `only`."""
    built = _new_app()
    built.callback()(_global_options)
    for name in COMMAND_MODULES if only is None else (only,):
        importlib.import_module(f"ppsguard.cli.{name}").register(built)
    return built


def command_of(args: list[str]) -> str | None:
    """The command module an argument list runs, when it names one (else None: build them all)."""
    for arg in args:
        if arg in _GLOBAL_FLAGS:
            continue
        return arg if arg in COMMAND_MODULES else None
    return None


def __getattr__(name: str) -> typer.Typer:
    """`app`, the full command tree, is built on first use (tests, documentation tools)."""
    if name == "app":
        built = build_app()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run `pps` and return its exit code (the console script exits with it).

    Typer runs in standalone mode, so usage errors already print and exit 2; what reaches us
    here is a PpsError (one line, its exit code) or a bug: its traceback, as it should, and
    exit 3, not Python's 1, which `pps` spends on "findings" (a script must not read a crash
    as an audit that found something).
    """
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    if "--store" in args:
        from ppsguard.cli.storeopt import expand_store_flag

        args = expand_store_flag(args)
    _debug["on"] = "--debug" in args
    try:
        build_app(command_of(args))(args=args, prog_name="pps")
    except SystemExit as done:
        code = done.code
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # Click's answer to EPIPE (the reader went away: `pps sockets | head`) is exit 1,
            # our code for findings; a closed pipe is not a finding, as below.
            return 0
        return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)
    except PpsError as error:
        if _debug["on"]:
            raise
        sys.stderr.write(f"pps: error: {one_line(str(error))}\n")
        return error.exit_code
    except KeyboardInterrupt:
        output.note("pps: interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as refused:  # a path or the system said no where no check expected it
        if _debug["on"]:
            raise
        meant = os_failure(refused)
        sys.stderr.write(f"pps: error: {one_line(str(meant))}\n")
        return meant.exit_code
    except Exception:  # a bug: keep the traceback, not Python's exit code
        import traceback

        traceback.print_exc()
        sys.stderr.write("pps: internal error (a bug in pps, please report it with the above)\n")
        return EXIT_RUNTIME
    return 0


def hoist_global_flags(args: list[str]) -> list[str]:
    """`--pretty` and `--no-color` may follow the command (`pps sockets --json --pretty`):
    move them before it, where Typer reads global options. Nothing after `--` is touched."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a in _ANYWHERE_FLAGS]
    if not found:
        return list(args)
    rest = [a for a in args[:end] if a not in _ANYWHERE_FLAGS]
    return [*dict.fromkeys(found), *rest, *args[end:]]


def one_line(text: str, limit: int = 2000) -> str:
    """An error message as one printable line: newlines folded, control characters escaped."""
    from ppsguard.report.sanitize import visible

    folded = " | ".join(part.strip() for part in text.splitlines() if part.strip())
    printable = visible(folded)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def run() -> None:
    sys.exit(main())
