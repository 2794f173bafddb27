"""The importers under the fuzzing harness (#18's rules, `holds` and `mutated` from
test_parsers_fuzz): mutated ufw, firewalld, iptables, ipset and nft samples may only give a draft
that loads, or one InputError naming where — never another exception, never a hang."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from test_parsers_fuzz import BUDGET, holds, mutated

from ppsguard.importers.build import import_rules
from ppsguard.importers.draft import draft_text

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "import"
BY_SOURCE = {
    "iptables": ["hand-made.rules.v4", "hand-made.rules.v6", "admins.ipset"],
    "nftables": ["named-sets.json"],
    "ufw": ["ufw-status-verbose.txt", "ufw-status-numbered.txt", "ufw-user.rules", "ufw-default"],
    "firewalld": ["zone-public.xml", "firewalld-zones.txt", "lab-web.xml", "ssh.xml"],
}


def _import_and_draft(source: str, inputs: list[tuple[str, str]]) -> None:
    imported = import_rules(source, inputs)
    draft_text(imported, host="fuzz", today=dt.date(2026, 12, 2))


@BUDGET
@given(st.sampled_from(sorted(BY_SOURCE)), st.data())
def test_importers(source: str, data: st.DataObject) -> None:
    names = BY_SOURCE[source]
    texts = [(SAMPLES / name).read_text() for name in names]
    changed = data.draw(st.integers(0, len(names) - 1))
    inputs = [
        (name, data.draw(mutated([text])) if index == changed else text)
        for index, (name, text) in enumerate(zip(names, texts, strict=True))
    ]
    holds(_import_and_draft, source, inputs)
