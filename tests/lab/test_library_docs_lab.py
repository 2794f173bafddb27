"""docs/library.md's root-only examples (`python lab` blocks) run against a real lab host.

The page names the lab host `ppsl-0-3cc4be-target` (as `pps lab up` would); here it is the
target host of a lab this test makes, and the firewall state goes to a temporary folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_library_docs import code_blocks, run_blocks

pytestmark = pytest.mark.lab
PAGE_NETNS = "ppsl-0-3cc4be-target"


def test_the_lab_examples_apply_confirm_and_audit(
    lab_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PPSGUARD_STATE_DIR", str(tmp_path / "state"))
    lab = lab_factory(["target"])
    target = lab["target"]
    blocks = code_blocks("python lab")
    assert blocks and all(PAGE_NETNS in block for block in blocks)
    namespace: dict[str, object] = {"__name__": "library_md_lab"}
    printed = run_blocks([b.replace(PAGE_NETNS, target.netns) for b in blocks], namespace)
    outcome: Any = namespace["outcome"]
    assert outcome.watchdog_pid is not None and "pop3" in outcome.change.added
    assert "table inet ppsguard" in target.run(["nft", "list", "tables"]).stdout
    state = tmp_path / "state" / f"netns-{target.netns}"
    assert (state / "confirmed").exists() and not (state / "pending.json").exists()
    run: Any = namespace["run"]
    assert run.report.host == "building" and "pop3" in printed
