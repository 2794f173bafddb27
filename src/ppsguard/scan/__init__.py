"""Port discovery (`pps scan`): targets, ports, engines and the `scan()` library entry point.

result = await ppsguard.scan.scan(["198.18.0.2"], "1-1024", options=ScanOptions(engine="connect"))

The names are loaded on first use, so importing a submodule (the CLI imports
`ppsguard.scan.observer` at start-up) does not load the engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ppsguard.scan.engine import ScanOptions, scan
    from ppsguard.scan.observer import NullObserver, ScanObserver

__all__ = ["NullObserver", "ScanObserver", "ScanOptions", "scan"]


def __getattr__(name: str) -> Any:
    if name in ("ScanOptions", "scan"):
        from ppsguard.scan import engine

        return getattr(engine, name)
    if name in ("NullObserver", "ScanObserver"):
        from ppsguard.scan import observer

        return getattr(observer, name)
    raise AttributeError(f"module 'ppsguard.scan' has no attribute {name!r}")
