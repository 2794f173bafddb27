"""The one scope gate: span arithmetic, admission of the whole expanded target set, rate ceilings,
dry runs — and that `pps scan --dry-run` refuses exactly what the real scan refuses.

Every refusal here happens before anything is sent; the targets are loopback (so even a broken
gate could only reach this machine) or lab addresses that are only planned, never probed.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ppsguard.cli.app import app, main
from ppsguard.errors import UsageError
from ppsguard.scan.engine import ScanOptions, run_sync, scan
from ppsguard.scan.plan import plan_scan
from ppsguard.scan.scope import ScopeGate, merge_spans, subtract_spans
from ppsguard.scan.targets import parse_targets

_spans = st.lists(
    st.tuples(st.integers(0, 80), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=8,
)


def _members(spans: list[tuple[int, int]]) -> set[int]:
    return {value for low, high in spans for value in range(low, high + 1)}


@given(_spans, _spans)
def test_span_arithmetic_matches_sets(
    spans: list[tuple[int, int]], cut: list[tuple[int, int]]
) -> None:
    merged = merge_spans(spans)
    assert _members(merged) == _members(spans)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(merged))
    left = subtract_spans(merged, merge_spans(cut))
    assert _members(left) == _members(spans) - _members(cut)
    assert left == merge_spans(left)


def _gate(scope: list[str] | None = None, exclude: tuple[str, ...] = (), **kw: object) -> ScopeGate:
    return ScopeGate.from_tokens(scope=scope, exclude=exclude, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "outside"),
    [
        ("198.18.0.0-198.18.1.255", "198.18.0.128"),  # both ends inside, the middle is not
        ("198.18.0.0/23", "198.18.0.128"),
        ("198.18.0.1-200", "198.18.0.128"),
        ("198.18.1.250-198.18.2.3", "198.18.2.0"),
    ],
)
def test_whole_expanded_set_is_checked(token: str, outside: str) -> None:
    gate = _gate(["198.18.0.0/25", "198.18.1.0/24"])
    with pytest.raises(UsageError) as refused:
        gate.admit(parse_targets([token]))
    assert refused.value.token == outside


def test_excluded_addresses_are_dropped_before_the_scope_check() -> None:
    gate = _gate(["198.18.0.0/25"], exclude=("198.18.0.128/25",))
    targets = gate.admit(parse_targets(["198.18.0.120-198.18.0.140", "198.18.0.121"]))
    assert targets.count == 8  # .120-.127; .121 again adds nothing
    assert [t.excluded for t in targets.entries] == [13, 0]
    hosts = [str(a) for a, _ in targets.hosts()]
    assert hosts == [f"198.18.0.{n}" for n in range(120, 128)]
    assert [str(n) for n in targets.networks()] == ["198.18.0.120/29"]


def test_addresses_partition_and_refusal() -> None:
    gate = _gate(["198.18.0.0/24"], exclude=("198.18.0.9",))
    inside, lab6, excluded = (
        ipaddress.ip_address(a) for a in ("198.18.0.2", "2001:db8::2", "198.18.0.9")
    )
    assert gate.partition([inside, lab6, excluded, inside]) == ([inside], [lab6])
    assert gate.admit_addresses([excluded, inside, inside]) == [inside]
    with pytest.raises(UsageError, match="--scope") as refused:
        gate.admit_addresses([inside, lab6])
    assert refused.value.token == "2001:db8::2"
    assert ScopeGate().partition([lab6]) == ([lab6], [])  # no scope: everything is inside


def test_rate_ceiling() -> None:
    lab = [ipaddress.ip_address("198.18.0.2"), ipaddress.ip_address("2001:db8::1")]
    reserved = ipaddress.ip_address("240.0.0.1")  # reserved, unroutable: planned, never sent
    assert ScopeGate().rate_ceiling(lab) is None
    assert ScopeGate().rate_ceiling([*lab, reserved]) == 5000
    assert ScopeGate(max_rate=30).rate_ceiling([reserved]) == 30
    assert ScopeGate(timing=2).rate_ceiling(lab) == 100  # -T2's ceiling holds without --max-rate
    assert ScopeGate(timing=0).rate_ceiling(lab) == 1
    targets = ScopeGate().admit(parse_targets(["198.18.0.0/24", "240.0.0.0/30"]))
    assert ScopeGate().rate_ceiling(targets) == 5000
    with pytest.raises(UsageError):
        ScopeGate(timing=7)
    with pytest.raises(UsageError):
        ScopeGate(max_rate=float("nan"))


def test_dry_run_gate_refuses_to_send() -> None:
    with pytest.raises(UsageError, match="dry run"):
        ScopeGate(dry_run=True).clear_to_send("nmap")
    ScopeGate().clear_to_send("nmap")


def test_library_dry_run_plans_and_never_connects() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        options = ScanOptions(engine="connect", dry_run=True, skip_discovery=True)
        plan = run_sync(plan_scan(["127.0.0.1"], str(port), options=options))
        assert plan.probes == 1 and plan.targets.count == 1
        with pytest.raises(UsageError, match="dry run"):
            run_sync(scan(["127.0.0.1"], str(port), options=options))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def _write_scope(tmp_path: Path, *networks: str) -> str:
    path = tmp_path / "scope.txt"
    path.write_text("# allowed\n" + "\n".join(networks) + "\n", "utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("scope", "targets", "outside"),
    [
        (["127.0.0.0/25", "127.0.1.0/24"], ["127.0.0.0-127.0.1.255"], "127.0.0.128"),
        (["127.0.0.0/25", "127.0.0.192/26"], ["127.0.0.1-200"], "127.0.0.128"),
        (["127.0.0.0/24"], ["127.0.0.5", "127.0.2.0/30"], "127.0.2.0"),
        (["198.18.0.0/24"], ["localhost"], None),  # a name: checked after it resolved
    ],
)
def test_dry_run_refuses_exactly_as_the_real_scan(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scope: list[str],
    targets: list[str],
    outside: str | None,
) -> None:
    args = ["scan", "--connect", "-Pn", "-p", "1", "--scope", _write_scope(tmp_path, *scope)]
    assert main([*args, "--dry-run", *targets]) == 2
    dry = capsys.readouterr().err
    assert main([*args, *targets]) == 2
    real = capsys.readouterr().err
    assert dry == real and len(real.strip().splitlines()) == 1
    assert "--scope" in real and (outside is None or repr(outside) in real)


def test_dry_run_counts_the_admitted_set(tmp_path: Path) -> None:
    scope = _write_scope(tmp_path, "198.18.0.0/24")
    args = ["scan", "--connect", "--dry-run", "--scope", scope, "-p", "1-10", "--exclude"]
    result = CliRunner().invoke(app, [*args, "198.18.0.2", "198.18.0.1-4", "198.18.0.3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "target 198.18.0.1-4: 3 address(es) 198.18.0.1 .. 198.18.0.4 (1 excluded)" in lines
    assert "scope: all 3 address(es) inside the --scope allow-list" in lines
    assert "up to 30 probes" in result.output  # 198.18.0.3 twice counts once


def test_engines_and_service_probes_get_the_gates_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """-T2 without --max-rate: the engine and -sV are paced at the preset's 100 packets/s."""
    import ppsguard.scan.engine as engine_module
    import ppsguard.scan.identify as identify_module

    seen: dict[str, object] = {}
    real_run_engine = engine_module._run_engine

    def run_engine(name: str, probes: object, cfg: object, emit: object, stats: object) -> None:
        seen["engine"] = cfg.max_rate  # type: ignore[attr-defined]
        real_run_engine(name, probes, cfg, emit, stats)  # type: ignore[arg-type]

    async def identify(targets: object, **kwargs: object) -> dict[object, object]:
        seen["identify"] = (kwargs["rate"], kwargs["concurrency"])
        return {}

    monkeypatch.setattr(engine_module, "_run_engine", run_engine)
    monkeypatch.setattr(identify_module, "identify_services", identify)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        options = ScanOptions(engine="connect", timing=2, identify=True, confirm=False)
        result = run_sync(scan(["127.0.0.1"], str(port), options=options))
    assert [p.port for p in result.hosts[0].ports] == [port]
    assert seen == {"engine": 100.0, "identify": (100.0, 64)}
