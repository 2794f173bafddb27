"""Waiting, in tests, for what another process or thread makes: poll a condition until it
holds or a bound passes. A bound, never a measure: no test asserts how long it took.

    assert wait_for(lambda: "inet ppsguard" not in ruleset(fw), 30)
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], seconds: float = 30.0, every: float = 0.1) -> bool:
    """Whether `predicate` held within `seconds`, asked every `every` seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
