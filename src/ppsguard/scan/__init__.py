"""Port discovery (`pps scan`): targets, the scope gate, ports, engines, identification and the
`scan()` library entry point (async; `scan_sync` for callers without an event loop).

    result = await ppsguard.scan.scan(["198.18.0.2"], "1-1024", options=ScanOptions())
    result = ppsguard.scan.scan_sync(["198.18.0.2"], "22,80", options=ScanOptions(identify=True))
    plan = await ppsguard.scan.plan_scan(["198.18.0.0/28"], "22", options=ScanOptions())  # dry run

Every path that sends packets passes one `ScopeGate` (scope.py). The names are loaded on first
use, so importing a submodule (the CLI imports `ppsguard.scan.observer` at start-up) does not
load the engines. Nothing here may print: results are values, the CLI renders them.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from ppsguard.lazy import lazy_names

if TYPE_CHECKING:
    from ppsguard.scan.engine import scan, scan_sync
    from ppsguard.scan.identify import identify_open_ports
    from ppsguard.scan.observer import NullObserver, ScanObserver
    from ppsguard.scan.options import ScanOptions
    from ppsguard.scan.plan import ScanPlan, plan_scan
    from ppsguard.scan.scope import ScopeGate

__all__ = [
    "NullObserver",
    "ScanObserver",
    "ScanOptions",
    "ScanPlan",
    "ScopeGate",
    "identify_open_ports",
    "plan_scan",
    "scan",
    "scan_sync",
]

_HOMES = {
    "ScanOptions": "options",
    "scan": "engine",
    "scan_sync": "engine",
    "identify_open_ports": "identify",
    "NullObserver": "observer",
    "ScanObserver": "observer",
    "ScanPlan": "plan",
    "plan_scan": "plan",
    "ScopeGate": "scope",
}


__getattr__ = lazy_names(__name__, _HOMES)


class _CallablePackage(types.ModuleType):
    """This package, callable: `ppsguard.scan(targets, ports, ...)` is `scan_sync(...)`, because
    `import ppsguard` offers `scan` as a function while `ppsguard.scan` is also this package's
    name: whichever Python finds, the call works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ppsguard.scan.engine import scan_sync

        return scan_sync(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
