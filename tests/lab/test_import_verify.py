"""`pps registry import --verify` for real: the original rule set in one lab host, the compiled
draft in another, the same real probes to both (see ppsguard.importers.verify). Typical sets:
a hand-made iptables set (multiport, ipsets, ranges, jumps), an nftables set with named sets and
a verdict map, and ufw's own rule files written by the real ufw (Debian's package) inside a lab
namespace with a private mount namespace, then enabled by the real ufw in the original host.
firewalld: the real firewall-offline-cmd writes the zone XML (inside a lab namespace, private
mounts), the draft is checked against what the zone says, and --verify runs the real firewalld
daemon (with a private D-Bus system bus) in the original host.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.model.net import Protocol
from ppsguard.model.registry import Action
from ppsguard.policy.compile import compile_host_policy
from ppsguard.policy.evaluate import evaluate
from ppsguard.registry.load import load_registry
from ppsguard.testing.pytest_plugin import lab_required

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "import"
PRIVATE = ["unshare", "-m", "--propagation", "private", "sh", "-ec"]


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if lab_required():
            pytest.fail(f"PPSGUARD_REQUIRE_LAB=1 but {tool} is not installed", pytrace=False)
        pytest.skip(f"{tool} is not installed (make system-deps)")


def pps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def summary(stdout: str) -> tuple[int, int, int]:
    found = re.search(r"verify: (\d+) probes .*: (\d+) differ, (\d+) not explained", stdout)
    assert found, stdout
    probes, differ, unexplained = (int(g) for g in found.groups())
    return probes, differ, unexplained


@pytest.mark.lab
def test_iptables_hand_made_set_is_equivalent(tmp_path: Path) -> None:
    need("iptables-restore")
    need("ipset")
    done = pps("registry", "import", "--from", "iptables", "--verify", "-o",
               str(tmp_path / "draft.yaml"), *(str(SAMPLES / n) for n in
               ("hand-made.rules.v4", "hand-made.rules.v6", "admins.ipset")))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    probes, _differ, unexplained = summary(done.stdout)
    assert probes > 50 and unexplained == 0
    # what differs is only the rate-limited 2222/tcp (listed): every such line names it
    for line in done.stdout.splitlines():
        if " -> " in line and "original" in line:
            assert "hand-made.rules.v4:19" in line, line


@pytest.mark.lab
def test_nftables_named_sets_and_verdict_map_are_equivalent(tmp_path: Path) -> None:
    need("nft")
    done = pps("registry", "import", "--from", "nftables", "--verify", "-o",
               str(tmp_path / "draft.yaml"), str(SAMPLES / "named-sets.json"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    probes, _differ, unexplained = summary(done.stdout)
    assert probes > 50 and unexplained == 0
    for line in done.stdout.splitlines():
        if " -> " in line and "original" in line:
            assert "8080/tcp" in line and "limit" in line, line


@pytest.mark.lab
def test_real_ufw_rules_import_and_verify(lab_factory, tmp_path: Path) -> None:
    need("ufw")
    lab = lab_factory(["ufw"])
    shutil.copytree("/etc/ufw", tmp_path / "ufw")
    shutil.copy("/etc/default/ufw", tmp_path / "default-ufw")
    mounts = (f"mount --bind {tmp_path}/ufw /etc/ufw && "
              f"mount --bind {tmp_path}/default-ufw /etc/default/ufw")  # fmt: skip
    asked = [
        "ufw allow 22/tcp",
        "ufw allow http",
        "ufw limit 2222/tcp",
        "ufw deny from 198.18.0.66 to any port 3306 proto tcp",
        "ufw allow from 198.18.0.0/24 to any port 53",
        "ufw reject 5000:5004/udp",
    ]
    lab["ufw"].run([*PRIVATE, " && ".join([mounts, *asked])])
    files = [tmp_path / "ufw" / "user.rules", tmp_path / "ufw" / "user6.rules"]
    files.append(tmp_path / "default-ufw")
    done = pps("registry", "import", "--from", "ufw", "--verify", "-o",
               str(tmp_path / "draft.yaml"), *map(str, files))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    probes, differ, unexplained = summary(done.stdout)
    assert probes > 30 and differ == 0 and unexplained == 0
    assert "rate limit (-m recent)" in done.stdout
    text = (tmp_path / "draft.yaml").read_text()
    assert "ufw allow tcp 22" in text and "ufw deny tcp 3306" in text


@pytest.mark.lab
def test_real_firewalld_zone_import_and_verify(lab_factory, tmp_path: Path) -> None:
    need("firewall-offline-cmd")
    need("dbus-daemon")
    lab = lab_factory(["firewalld"])
    shutil.copytree("/etc/firewalld", tmp_path / "firewalld")
    asked = [
        "firewall-offline-cmd --zone=public --add-service=http",
        "firewall-offline-cmd --zone=public --add-port=5000-5010/udp",
        'firewall-offline-cmd --zone=public --add-rich-rule=\'rule family="ipv4" source '
        'address="198.18.0.0/24" service name="mysql" accept\'',
        'firewall-offline-cmd --zone=public --add-rich-rule=\'rule family="ipv4" source '
        'address="198.18.0.66" port port="22" protocol="tcp" log prefix="x" reject\'',
    ]
    mount = f"mount --bind {tmp_path}/firewalld /etc/firewalld"
    lab["firewalld"].run([*PRIVATE, " && ".join([mount, *asked])])
    zone = tmp_path / "firewalld" / "zones" / "public.xml"
    done = pps("registry", "import", "--from", "firewalld", str(zone), "--verify", "-o",
               str(tmp_path / "draft.yaml"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    probes, differ, unexplained = summary(done.stdout)
    assert probes > 30 and differ == 0 and unexplained == 0
    assert "dhcpv6-client" in done.stdout  # its destination (fe80::/64) is listed
    policy = compile_host_policy(load_registry(tmp_path / "draft.yaml"))
    for source, port, protocol, action in [
        ("198.18.0.66", 22, "tcp", Action.REJECT),
        ("198.18.0.5", 22, "tcp", Action.ALLOW),  # the default zone's ssh service
        ("198.18.0.5", 80, "tcp", Action.ALLOW),
        ("198.18.0.5", 3306, "tcp", Action.ALLOW),
        ("198.18.1.5", 3306, "tcp", Action.REJECT),  # target default: reject
        ("2001:db8::5", 5005, "udp", Action.ALLOW),
    ]:
        decision = evaluate(policy, ipaddress.ip_address(source), port, Protocol(protocol))
        assert decision.action is action, (source, port)


@pytest.mark.lab
def test_live_reads_a_lab_hosts_rules(lab_factory) -> None:
    need("nft")
    need("iptables-save")
    lab = lab_factory(["nft", "ipt"])
    lab["nft"].nft((SAMPLES / "named-sets.nft").read_text())
    lab["ipt"].run(["ipset", "restore"], input=(SAMPLES / "admins.ipset").read_text())
    lab["ipt"].run(["iptables-restore"], input=(SAMPLES / "hand-made.rules.v4").read_text())
    live = pps("registry", "import", "--from", "nftables", "--live", "--netns", lab["nft"].netns)
    assert live.returncode == 0, live.stderr
    from_file = pps("registry", "import", "--from", "nftables", str(SAMPLES / "named-sets.json"))
    assert live.stdout.count("- id:") == from_file.stdout.count("- id:") > 5
    live = pps("registry", "import", "--from", "iptables", "--live", "--netns", lab["ipt"].netns)
    assert live.returncode == 0, live.stderr
    assert "admins:" in live.stdout and "rate limit (-m limit)" in live.stdout
