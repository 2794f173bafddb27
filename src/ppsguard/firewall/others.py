"""The I/O edge of coexistence: read every rule set a manager may keep rules in.

`nft -j list ruleset` (native nftables tables: firewalld, libvirt, kube-proxy and Docker in
their nftables modes), `iptables-nft-save` / `ip6tables-nft-save` and `iptables-legacy-save` /
`ip6tables-legacy-save` (ufw, Docker, libvirt, kube-proxy and firewalld's iptables backend;
legacy rules are invisible to nft). The xtables tables (`ip filter`, `ip nat`, ...) are taken
from iptables-nft-save, which prints them as they were written, rather than from nft. The
analysis is `coexist.py`'s; nothing here changes the rule set.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

from ppsguard.errors import PpsError
from ppsguard.firewall.coexist import Manager, coexistence, find_managers
from ppsguard.firewall.legacy import legacy_objects

if TYPE_CHECKING:
    from ppsguard.firewall.nft import Runner
    from ppsguard.model.registry import HostPolicy

_XTABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})


def read_objects(runner: Runner) -> tuple[list[dict[str, Any]], list[str]]:
    """Rule objects of every source (nft -j shaped) and notes on sources that failed."""
    objects: list[dict[str, Any]] = []
    notes: list[str] = []
    have_nft_save = False
    for backend in ("nft", "legacy"):
        for version, family in ((4, "ip"), (6, "ip6")):
            tool = f"{'iptables' if version == 4 else 'ip6tables'}-{backend}-save"
            if shutil.which(tool) is None:
                continue
            try:
                text = runner.run([tool])
            except PpsError as exc:
                notes.append(f"could not read {tool}: {exc}")
                continue
            have_nft_save = have_nft_save or backend == "nft"
            label = f"{'iptables' if version == 4 else 'ip6tables'}-{backend}"
            objects.extend(legacy_objects(text, family, label))
    try:
        document = json.loads(runner.nft_list_json())
    except (PpsError, ValueError) as exc:
        notes.append(f"could not read nftables: {exc}")
        document = {}
    for item in document.get("nftables", []) if isinstance(document, dict) else []:
        body = next((v for v in item.values() if isinstance(v, dict)), {})
        table = body.get("name") if "table" in item else body.get("table")
        if have_nft_save and body.get("family") in {"ip", "ip6"} and table in _XTABLES:
            continue
        objects.append(item)
    return objects, notes


def read_managers(runner: Runner) -> tuple[list[Manager], list[str]]:
    """The managers present, and notes on what could not be read."""
    objects, notes = read_objects(runner)
    return find_managers(objects), notes


def coexistence_lines(runner: Runner, policy: HostPolicy | None) -> tuple[list[str], list[str]]:
    """(lines naming each manager and what it does to the registry's ports, notes)."""
    managers, notes = read_managers(runner)
    return coexistence(managers, policy), notes
