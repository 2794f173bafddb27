"""Run ppsguard as an installed package runs: from compiled bytecode.

`pip install` compiles a package's modules once. An editable checkout in an environment with
PYTHONDONTWRITEBYTECODE=1 (this machine sets it) instead recompiles every module it imports on
every run: about 0.1-0.15 s of CPU per command that no installed `pps` spends. The benchmarks
give their child processes an environment without that variable and with a temporary
PYTHONPYCACHEPREFIX, so a warm-up run writes the bytecode there, outside the checkout.

    with installed_env() as env:
        subprocess.run([...], env=env)   # run once to warm up, then time
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def installed_env() -> Iterator[dict[str, str]]:
    """The environment for timed child processes (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="ppsguard-bench-pyc-") as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        yield env
