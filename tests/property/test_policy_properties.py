"""Property tests on random registries over a small universe that represents every region.

Addresses come from 198.18.0.0/29 and 2001:db8::/125 (plus `anywhere`), ports from 1..8, so the
universe below (every address of both blocks, one address outside each, ports 0..9, tcp/udp/sctp)
contains a point of every elementary region: a brute-force walk over it is exhaustive.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsguard.model.net import Protocol
from ppsguard.policy.bulk import ACTION_CODES, BulkEvaluator
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.policy.lint import lint_registry, never_deciding
from ppsguard.registry.dump import dump_registry
from ppsguard.registry.load import parse_registry

V4 = [ipaddress.ip_address(f"198.18.0.{i}") for i in (*range(8), 100)]
V6 = [ipaddress.ip_address(f"2001:db8::{i:x}") for i in (*range(8), 0x100)]
LOOPBACK = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
# entries bind only to 198.18.0.1, 198.18.0.2, 2001:db8::1 or loopback: these destinations, plus
# one other address per family, represent every destination region
DESTINATIONS = {
    4: [ipaddress.ip_address(a) for a in ("198.18.0.1", "198.18.0.2", "198.18.0.3", "127.0.0.1")],
    6: [ipaddress.ip_address(a) for a in ("2001:db8::1", "2001:db8::3", "::1")],
}
PORTS = list(range(10))
PROTOCOLS = [Protocol.TCP, Protocol.UDP, Protocol.SCTP]
UNIVERSE = [(a, p, proto) for a in (*V4, *V6, *LOOPBACK) for p in PORTS for proto in PROTOCOLS]
UNIVERSE_TO = [
    (a, d, p, proto)
    for a in (*V4, *V6, *LOOPBACK)
    for d in DESTINATIONS[a.version]
    for p in PORTS
    for proto in PROTOCOLS
]


@st.composite
def atoms(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return "anywhere"
    v6 = draw(st.booleans())
    size = draw(st.sampled_from([1, 2, 4, 8]))
    base = draw(st.integers(0, 8 // size - 1)) * size
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    if v6:
        return f'"2001:db8::{base:x}/{128 - prefix}"'
    return f"198.18.0.{base}/{32 - prefix}"


@st.composite
def registries(draw: st.DrawFn) -> str:
    n_networks = draw(st.integers(0, 3))
    lines = ["version: 1"]
    lines.append(f"default: {draw(st.sampled_from(['deny', 'allow', 'reject']))}")
    lines.append(f"default_log: {str(draw(st.booleans())).lower()}")
    names = [f"net{i}" for i in range(n_networks)]
    if names:
        lines.append("networks:")
        for i, name in enumerate(names):
            members = draw(st.lists(st.one_of(atoms(), st.sampled_from(names[:i] or ["anywhere"])),
                                    min_size=1, max_size=3))  # fmt: skip
            excluded = draw(st.lists(atoms(), max_size=2))
            lines.append(
                f"  {name}: {{addresses: [{', '.join(members)}], except: [{', '.join(excluded)}]}}"
            )
    refs = st.one_of(atoms(), st.sampled_from(names)) if names else atoms()

    def entry(kind: str, index: int) -> str:
        lo = draw(st.integers(1, 8))
        hi = draw(st.integers(lo, 8))
        proto = draw(st.sampled_from(["tcp", "udp", "tcp+udp"]))
        parts = [f"id: {kind}{index}", f"port: {lo}-{hi}/{proto}"]
        parts.append(f"from: [{', '.join(draw(st.lists(refs, min_size=1, max_size=2)))}]")
        excluded = draw(st.lists(refs, max_size=1))
        if excluded:
            parts.append(f"except: [{', '.join(excluded)}]")
        parts.append(f"log: {str(draw(st.booleans())).lower()}")
        if kind == "p" and draw(st.integers(0, 3)) == 0:
            bind = ["198.18.0.1", "198.18.0.2", '"2001:db8::1"', "loopback"]
            parts.append(f"bind: {draw(st.sampled_from(bind))}")
        if kind == "d":
            parts.append(f"action: {draw(st.sampled_from(['deny', 'reject']))}")
        return "      - {" + ", ".join(parts) + "}"

    lines += ["hosts:", "  h:", "    denies:"]
    lines += [entry("d", i) for i in range(draw(st.integers(0, 4)))]
    lines.append("    provides:")
    lines += [entry("p", i) for i in range(draw(st.integers(0, 5)))]
    return "\n".join(lines) + "\n"


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdicts(text: str) -> list[tuple[str | None, str, bool]]:
    policy = compile_host_policy(parse_registry(text, "r.yaml"))
    out = []
    for address, destination, port, proto in UNIVERSE_TO:
        d = evaluate(policy, address, port, proto, destination)
        out.append((d.rule.entry_id if d.rule else None, str(d.action), d.log))
    return out


@SETTINGS
@given(registries())
def test_bulk_agrees_with_single(text: str) -> None:
    policy = compile_host_policy(parse_registry(text, "r.yaml"))
    bulk = BulkEvaluator(policy)
    result = bulk.evaluate(
        [u[0] for u in UNIVERSE], [u[1] for u in UNIVERSE], [u[2] for u in UNIVERSE]
    )
    for i, (address, port, proto) in enumerate(UNIVERSE):
        single = evaluate(policy, address, port, proto)
        assert result.rule[i] == single.index, (address, port, proto)
        assert result.action[i] == ACTION_CODES[single.action]
        assert bool(result.log[i]) is single.log
    columns = list(zip(*UNIVERSE_TO, strict=True))
    result = bulk.evaluate(columns[0], columns[2], columns[3], destinations=columns[1])
    for i, (address, destination, port, proto) in enumerate(UNIVERSE_TO):
        single = evaluate(policy, address, port, proto, destination)
        assert result.rule[i] == single.index, (address, destination, port, proto)


@SETTINGS
@given(registries())
def test_dump_and_reparse_keeps_verdicts(text: str) -> None:
    again = dump_registry(parse_registry(text, "r.yaml"))
    assert _verdicts(again) == _verdicts(text)


@SETTINGS
@given(registries())
def test_shadowed_is_true_and_complete(text: str) -> None:
    registry = parse_registry(text, "r.yaml")
    policy = compile_host_policy(registry)
    deciding = set()
    for address, destination, port, proto in UNIVERSE_TO:
        d = evaluate(policy, address, port, proto, destination)
        if d.rule is not None:
            deciding.add(d.rule.entry_id)
    entries = {r.entry_id for r in policy.rules}
    claimed = set(never_deciding(policy))
    assert claimed == entries - deciding
    reported = {
        f.entries[0]
        for f in lint_registry(registry, today=dt.date(2026, 1, 1))
        if f.code in ("shadowed", "contradictory", "matches-nothing")
        or (f.code == "redundant" and "never decides" in f.message)
    }
    assert reported == claimed
