"""docs/library.md runs: its `python` blocks are executed in order, as a reader would paste them.

Blocks fenced as `python lab` need root and the lab: tests/lab/test_library_docs_lab.py runs them.
The printed output must say what the page's comments say it does.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "library.md"
FENCE = re.compile(r"^```(python[^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(kind: str) -> list[str]:
    """The blocks fenced exactly as "```" + kind."""
    return [body for info, body in FENCE.findall(PAGE.read_text("utf-8")) if info.strip() == kind]


def run_blocks(blocks: list[str], namespace: dict[str, object] | None = None) -> str:
    """Execute the blocks in order in one namespace, from the repository's root; return stdout."""
    namespace = {"__name__": "library_md"} if namespace is None else namespace
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            for number, block in enumerate(blocks, 1):
                exec(compile(block, f"{PAGE}:block{number}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return out.getvalue()


def test_the_page_has_examples_of_every_function() -> None:
    import ppsguard

    code = "\n".join(code_blocks("python") + code_blocks("python lab"))
    functions = [n for n in ppsguard.__all__ if n[0].islower() and not n.startswith("__")]
    missing = [n for n in functions if f"ppsguard.{n}(" not in code]
    assert not missing, f"docs/library.md shows no call of {missing}"


def test_the_examples_run_and_print_what_they_say() -> None:
    blocks = code_blocks("python")
    assert len(blocks) >= 8
    printed = run_blocks(blocks)
    for expected in (
        "['building']",
        "deny True pop3-others",
        "unknown service",
        "table inet ppsguard {",
        "v4 iptables-restore",
        "v6 ip6tables-restore",
        "ppsguard audit report",
    ):
        assert expected in printed, f"{expected!r} not in the output:\n{printed}"
