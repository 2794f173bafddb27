"""The local inventory: which sockets are open in which namespace, and which processes hold them.

`collect()` is the library API `pps sockets`, the audit and the monitor share.
"""

from __future__ import annotations

from ppsguard.inventory.collect import collect, state_numbers

__all__ = ["collect", "state_numbers"]
