"""The lint example in docs/registry.md is the real output of `pps policy lint` on its file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lint_example_in_registry_docs_is_the_real_output() -> None:
    text = (ROOT / "docs" / "registry.md").read_text()
    block = re.search(r"```\n\$ pps policy lint (\S+)\n(.*?)```", text, re.S)
    assert block is not None, "docs/registry.md lost its lint example"
    path, expected = block.group(1), block.group(2)
    assert (ROOT / path).is_file(), f"the lint example names {path}, which is not in the repository"
    run = subprocess.run(
        [sys.executable, "-m", "ppsguard", "policy", "lint", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == expected
