"""Names of a package loaded on first use (PEP 562), so that importing one submodule does not
load the package's heavy ones.

    __getattr__ = lazy_names(__name__, {"scan": "engine", "ScanOptions": "options"})

Each name maps to the submodule (relative to the package) that defines it; the value is kept
in the package once loaded. Pure: imports only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The package's `__getattr__`: `homes` maps each name to its submodule."""

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
