"""The draft decides as the original: for random first-match rule lists (allow, drop, reject,
logged or not, ports, sources with excepts, both families), the draft's registry — denies first,
each minus the allows before it — gives every attempt the original's verdict. And the command:
its report, its file, its errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.importers.draft import draft_text
from ppsguard.importers.rules import (
    ANY4,
    ANY6,
    Imported,
    ImportedRule,
    Match,
    Sources,
    Verdict,
)
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.registry.load import parse_registry

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "import"
NETS = [
    ipaddress.ip_network(n)
    for n in ("198.18.0.0/24", "198.18.0.8/29", "198.18.0.9/32", "2001:db8::/64", "2001:db8::9/128")
]
ADDRESSES = [
    "198.18.0.9",
    "198.18.0.10",
    "198.18.1.1",
    "2001:db8::9",
    "2001:db8::a",
    "2001:db8:1::1",
]
PORTS = [20, 21, 22, 23, 24]
TO_ACTION = {Verdict.ACCEPT: Action.ALLOW, Verdict.DROP: Action.DENY, Verdict.REJECT: Action.REJECT}

sources = st.one_of(
    st.just(Sources((ANY4, ANY6))),
    st.lists(st.sampled_from(NETS), min_size=1, max_size=2, unique=True).map(
        lambda nets: Sources(tuple(nets))
    ),
    st.sampled_from(NETS).map(lambda net: Sources((ANY4, ANY6), (net,))),
)
rules = st.builds(
    lambda protocols, low, span, src, verdict, log, n: ImportedRule(
        Match(frozenset(protocols), ((low, low + span),), src), verdict, f"t:{n}", log
    ),
    st.sets(st.sampled_from(["tcp", "udp"]), min_size=1),
    st.sampled_from(PORTS[:4]),
    st.integers(0, 2),
    sources,
    st.sampled_from(list(Verdict)),
    st.booleans(),
    st.integers(1, 99),
)


def first_match(imported: Imported, source: str, port: int, protocol: str) -> tuple[Action, bool]:
    address = ipaddress.ip_address(source)
    for rule in imported.rules:
        box = rule.match
        in_ports = protocol in box.protocols and any(a <= port <= b for a, b in box.ports)
        if in_ports and any(address in net for net in box.sources.exact()):
            return TO_ACTION[rule.verdict], rule.log
    return TO_ACTION[imported.default], imported.default_log


@settings(max_examples=60, deadline=None)
@given(st.lists(rules, max_size=6), st.sampled_from(list(Verdict)), st.booleans())
def test_the_draft_decides_every_attempt_as_the_original(
    listed: list[ImportedRule], default: Verdict, default_log: bool
) -> None:
    imported = Imported("test", rules=listed, default=default, default_log=default_log)
    imported.families = {4, 6}
    text = draft_text(imported, host="fw", today=dt.date(2026, 12, 2))
    policy = compile_host_policy(parse_registry(text, "draft.yaml"))
    for source in ADDRESSES:
        for port in PORTS:
            for protocol in ("tcp", "udp"):
                decision = evaluate(policy, ipaddress.ip_address(source), port, Protocol(protocol))
                expected = first_match(imported, source, port, protocol)
                assert (decision.action, decision.log) == expected, (source, port, text)


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_writes_a_draft_that_validates_and_reports_what_it_left_out(tmp_path: Path) -> None:
    target = tmp_path / "draft.yaml"
    done = pps("registry", "import", "--from", "iptables", str(SAMPLES / "hand-made.rules.v4"),
               str(SAMPLES / "admins.ipset"), "-o", str(target))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not expressed: 5" in done.stdout
    assert "hand-made.rules.v4:18: interface eth1" in done.stdout
    assert pps("registry", "validate", str(target)).returncode == 0
    again = pps("registry", "import", "--from", "iptables", str(SAMPLES / "hand-made.rules.v4"),
                "-o", str(target))  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr


def test_command_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "rules"
    bad.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport nope -j ACCEPT\n")
    done = pps("registry", "import", "--from", "iptables", str(bad), "-o", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"{bad}:3" in done.stderr
    assert not (tmp_path / "o").exists()
    assert pps("registry", "import", "--from", "pf", str(bad)).returncode == 2


def test_command_help_names_every_source() -> None:
    done = pps("registry", "import", "--help")
    assert done.returncode == 0
    for word in ("ufw", "firewalld", "iptables", "nftables", "--verify", "--live"):
        assert word in done.stdout
