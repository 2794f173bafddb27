"""The knobs of a scan, as the command line's options set them (`pps scan --help`).

Plain data shared by the planner (`plan.py`, which builds the scope gate from it) and the
engine (`engine.py`); it decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ppsguard.model.net import IPNetwork


@dataclass(slots=True)
class ScanOptions:
    """Every knob of `scan()`; the defaults are `pps scan`'s."""

    engine: str | None = None  # None: syn when root, else connect
    udp: bool = False  # also scan UDP ports (U: items, or --udp with the TCP engine)
    timing: int = 3
    max_retries: int | None = None
    min_rate: float | None = None
    max_rate: float | None = None
    window: int | None = None
    seed: int | None = None
    exclude: Sequence[str] = ()
    scope: Sequence[IPNetwork] | None = None
    skip_discovery: bool = False
    discovery: str = "auto"  # methods: auto, or a comma list of arp, nd, icmp, tcp
    ping_only: bool = False  # -sn: discovery only, no port scan
    confirm: bool = True
    all_states: bool = False
    host_timeout: float | None = None
    deadline: float | None = None  # seconds for the whole scan
    guess_services: bool = True
    arguments: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    dry_run: bool = False  # the gate refuses to send: plan_scan() shows what would be sent
    identify: bool = False  # identify the services on open ports (-sV)
    service_timeout: float = 2.0  # seconds per port for identification
    # allow probes that try a credential or may disturb services (SNMP community "public"),
    # in the UDP engine's discovery payloads and in identification alike
    intrusive: bool = False
    # list silent (open|filtered) UDP ports without all_states, for identification to ask them;
    # `identify` implies it (an answer proves such a port open, the silent ones are dropped again)
    keep_open_filtered: bool = False
