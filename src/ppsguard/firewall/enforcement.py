"""Is the registry enforced here? `read_enforcement`: the one entry point for `pps audit`,
`pps policy status` and the drift check of `pps policy apply`.

It asks the state folder which target the last apply used (`target.json`, trusted only when
the folder obeys its rules) and reads that target's rules: nftables (`state.py`) or the
iptables chains on the recorded backend (`ipstate.py`). Nothing here changes the rule set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ppsguard.firewall.ipstate import read_iptables_enforcement
from ppsguard.firewall.state import Enforcement, read_nft_enforcement

if TYPE_CHECKING:
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.statedir import StateDir
    from ppsguard.model.registry import HostPolicy


def read_enforcement(
    runner: Runner, state: StateDir, policy: HostPolicy | None = None
) -> Enforcement:
    """The judgement of the target the last apply used (nftables when none is recorded)."""
    target, backend = state.target() if state.trusted() else ("nftables", None)
    if target == "iptables" and backend is not None:
        return read_iptables_enforcement(runner, state, policy, backend)
    return read_nft_enforcement(runner, state, policy)
