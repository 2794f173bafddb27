"""pyarrow without pandas: when pandas is installed (it comes with the spark extra), pyarrow
imports it on its first conversion, to tell whether an object is a pandas Series. That import
took 0.6-0.7 s of a 2M-flow `pps flows audit --engine duckdb`: 2.1-2.3 s with it, 1.6 s with
pandas hidden, the same document (2026-12). ppsguard hands pyarrow no pandas objects, so a
`pps flows` command makes pyarrow's first conversion with pandas hidden: pyarrow's lazy
importer then records pandas as absent for those checks. An explicit use of pandas through
pyarrow (`to_pandas`) would still import it. Process state: commands only, never the library.

    skip_pandas()     # once, before the command's first Arrow conversion
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def skip_pandas() -> None:
    """Make pyarrow's first conversion with pandas hidden (nothing to do once pandas is
    imported)."""
    if "pandas" in sys.modules:
        return
    import numpy as np
    import pyarrow as pa

    hidden = _Hidden()
    sys.meta_path.insert(0, hidden)
    try:
        pa.array(np.zeros(1)).to_numpy()
    finally:
        sys.meta_path.remove(hidden)
