"""Port discovery (`pps scan`): targets, ports, engines and the `scan()` library entry point.

result = await ppsguard.scan.scan(["198.18.0.2"], "1-1024", options=ScanOptions(engine="connect"))
"""

from __future__ import annotations

from ppsguard.scan.engine import ScanOptions, scan
from ppsguard.scan.observer import NullObserver, ScanObserver

__all__ = ["NullObserver", "ScanObserver", "ScanOptions", "scan"]
