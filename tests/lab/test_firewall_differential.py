"""The differential test that counts: the kernel's verdicts equal the explain engine's.

For random registries (YAML through the real loader; IPv4 and IPv6 sources, bind addresses,
TCP and UDP, allow / deny / reject, log or not, excepts, defaults) and random probe tuples, a
lab host loaded with the compiled rule set (nftables; the iptables files; and the iptables target
as `pps policy apply` loads it, on the legacy and the nf_tables backend) must treat real packets
exactly as `ppsguard.policy.evaluate` says: allow = connection accepted / datagram echoed,
reject = refused (TCP RST / ICMP unreachable), deny = silence; and an NFLOG record carrying the
deciding entry's id exactly when the verdict is logged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_firewall_helpers import OUTCOME, LogCollector, probe

from ppsguard.firewall.iptables import apply_iptables
from ppsguard.firewall.nft import Runner
from ppsguard.firewall.render import renderer
from ppsguard.firewall.statedir import StateDir
from ppsguard.lab.hosts import HostSpec, Lab
from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.registry.load import parse_registry
from ppsguard.testing.pytest_plugin import require_lab

PORTS = (2001, 2002, 2003)
SOURCES = ("198.18.0.11", "198.18.0.12", "2001:db8::b", "198.18.0.0/24", "2001:db8::/64")
CLIENTS = ("c1", "c2")

entry = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["provides", "deny", "reject"]),
        "first": st.sampled_from(PORTS),
        "span": st.integers(0, 1),
        "protocol": st.sampled_from(["tcp", "udp"]),
        "sources": st.one_of(
            st.just(None), st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True)
        ),
        "except": st.one_of(st.just(None), st.sampled_from(["198.18.0.12", "2001:db8::b"])),
        "log": st.booleans(),
        "bind": st.sampled_from([None, None, "198.18.0.1", "2001:db8::1"]),
    }
)
registries = st.tuples(
    st.lists(entry, min_size=1, max_size=6),
    st.sampled_from(["allow", "deny", "reject"]),
    st.booleans(),
)
probes = st.lists(
    st.tuples(
        st.sampled_from(CLIENTS),
        st.sampled_from([4, 6]),
        st.sampled_from(PORTS),
        st.sampled_from(["tcp", "udp"]),
    ),
    min_size=4,
    max_size=6,
)


def registry_yaml(spec: tuple[list[dict], str, bool]) -> str:
    entries, default, default_log = spec
    provides, denies = [], []
    for index, item in enumerate(entries):
        last = item["first"] + item["span"]
        port = f"{item['first']}-{last}" if last != item["first"] else str(item["first"])
        lines = [f"      - id: e{index}", f"        port: {port}/{item['protocol']}"]
        if item["sources"] is None:
            lines.append("        from: anywhere")
        else:
            lines.append(f"        from: [{', '.join(item['sources'])}]")
        if item["except"] is not None:
            lines.append(f"        except: [{item['except']}]")
        lines.append(f"        log: {'true' if item['log'] else 'false'}")
        if item["kind"] == "provides":
            if item["bind"] is not None:  # the entry then only matches that destination
                lines.append(f"        bind: {item['bind']}")
            provides.append("\n".join(lines))
        else:
            denies.append("\n".join([*lines, f"        action: {item['kind']}"]))
    text = (
        f"version: 1\ndefault: {default}\ndefault_log: {str(default_log).lower()}\nhosts:\n  fw:\n"
    )
    if denies:
        text += "    denies:\n" + "\n".join(denies) + "\n"
    if provides:
        text += "    provides:\n" + "\n".join(provides) + "\n"
    return text


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_lab()
    with Lab(
        [
            HostSpec("fw", ipv4="198.18.0.1"),
            HostSpec("c1", ipv4="198.18.0.11"),
            HostSpec("c2", ipv4="198.18.0.12"),
        ]
    ) as made:
        # the kernel rate-limits the ICMP errors a UDP reject sends (1/s per peer by default):
        # a real behaviour, but it would make `reject` look like `deny` between quick probes
        made["fw"].run(["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"])
        made["fw"].run(["sysctl", "-q", "-w", "net.ipv6.icmp.ratelimit=0"])
        for port in PORTS:
            made["fw"].listen(port, "tcp")
            made["fw"].listen(port, "udp")
        yield made


EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def load(lab: Lab, target: str, text: str) -> None:
    fw = lab["fw"]
    fw.run(["nft", "flush", "ruleset"])
    for tool in ("iptables-legacy-restore", "ip6tables-legacy-restore"):
        # legacy tables are invisible to `nft flush ruleset` and would still filter
        fw.run([tool], input=EMPTY_FILTER)
    policy = compile_host_policy(parse_registry(text, "random.yaml"), "fw")
    if target.startswith("apply-"):  # the real apply: our chain + one jump, --noflush
        state = StateDir.for_netns(fw.netns, tempfile.mkdtemp(prefix="ppsguard-diff-"))
        apply_iptables(
            policy,
            runner=Runner(netns=fw.netns),
            state=state,
            window=None,
            backend=target.removeprefix("apply-iptables-"),
            force=True,
            keep_established=False,
        )
        shutil.rmtree(state.path.parent)
        return
    rendered = renderer(target).render(policy)
    if target == "nftables":
        fw.nft(rendered.files[0].text)  # the compiled file alone, as `nft -f` loads it
        return
    for item in rendered.files:
        fw.run([item.loader], input=item.text)


def check(
    lab: Lab,
    target: str,
    spec: tuple[list[dict], str, bool],
    attempts: list[tuple[str, int, int, str]],
) -> None:
    text = registry_yaml(spec)
    load(lab, target, text)
    policy = compile_host_policy(parse_registry(text, "random.yaml"), "fw")
    fw = lab["fw"]
    with LogCollector(fw) as logs:
        for client_name, version, port, protocol in attempts:
            client = lab[client_name]
            source = client.ipv4 if version == 4 else client.ipv6
            destination = fw.ipv4 if version == 4 else fw.ipv6
            decision = evaluate(policy, source, port, Protocol(protocol), destination)
            outcome, source_port = probe(client, destination, port, protocol, timeout=0.5)
            expected = (
                OUTCOME[str(decision.action)] if decision.action is not Action.ALLOW else "accepted"
            )
            where = f"{target}: {source} -> {port}/{protocol}\n{text}"
            assert outcome == expected, where
            entry_id = decision.rule.entry_id if decision.rule else "fw/default"
            logged = logs.entries_for(source_port, port, settle=0.1)
            assert logged == ([entry_id] if decision.log else []), where


# PPSGUARD_DIFF_EXAMPLES=200 for a deeper (random, not derandomized) run
EXAMPLES = int(os.environ.get("PPSGUARD_DIFF_EXAMPLES", "10"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES == 10,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.lab
@pytest.mark.slow
@SETTINGS
@given(spec=registries, attempts=probes)
def test_nftables_kernel_agrees_with_explain(lab: Lab, spec, attempts) -> None:
    check(lab, "nftables", spec, attempts)


@pytest.mark.lab
@pytest.mark.slow
@SETTINGS
@given(spec=registries, attempts=probes)
def test_iptables_kernel_agrees_with_explain(lab: Lab, spec, attempts) -> None:
    check(lab, "iptables", spec, attempts)


@pytest.mark.lab
@pytest.mark.slow
@SETTINGS
@given(spec=registries, attempts=probes)
def test_iptables_apply_legacy_kernel_agrees_with_explain(lab: Lab, spec, attempts) -> None:
    check(lab, "apply-iptables-legacy", spec, attempts)


@pytest.mark.lab
@pytest.mark.slow
@SETTINGS
@given(spec=registries, attempts=probes)
def test_iptables_apply_nft_kernel_agrees_with_explain(lab: Lab, spec, attempts) -> None:
    check(lab, "apply-iptables-nft", spec, attempts)
