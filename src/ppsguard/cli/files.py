"""The command line's side of output files: a file that fails never costs the result.

A command writes its files (`-oX`, `--html`, `-o`) through `ppsguard.files.write_atomic` before it
prints its result, and raises a failure only after the result is out: every file is tried, each
success is said on stderr (`wrote PATH`), the result is printed (even when stdout is a pipe that
closes early, the files are already written), then the first failure is raised — one line, exit 2
for a missing folder, 3 for permission or a full disk — after the others were warned of.

    failures = write_outputs([(args.xml, render_xml_text)])
    print_the_result()
    raise_first(failures)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ppsguard.cli.output import note, warn
from ppsguard.errors import PpsError
from ppsguard.files import write_atomic
from ppsguard.report.sanitize import visible


def write_outputs(outputs: Sequence[tuple[Path | None, Callable[[], str]]]) -> list[PpsError]:
    """Write each `(path, render)` whose path is given; return the failures, raise none."""
    failures: list[PpsError] = []
    for path, render in outputs:
        if path is None:
            continue
        try:
            write_atomic(path, render())
        except PpsError as failure:
            failures.append(failure)
            continue
        note(f"wrote {visible(path)}")
    return failures


def raise_first(failures: Sequence[PpsError]) -> None:
    """After the result: warn of all failures but the first, then raise the first."""
    for later in failures[1:]:
        warn(str(later))
    if failures:
        raise failures[0]
