"""`pps flows` commands do not import pandas through pyarrow (0.3-0.7 s of a short command when
the spark extra has installed it), and pyarrow's explicit pandas conversions still work."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.flows.columnar import write_parquet
from ppsguard.testing.flowsets import random_flows

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
HAVE_PANDAS = importlib.util.find_spec("pandas") is not None


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode in (0, 1), done.stderr  # 1: the audit has findings
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("engine", ["local", "duckdb"])
def test_a_flows_audit_imports_no_pandas(tmp_path: Path, engine: str) -> None:
    flows = tmp_path / "flows.parquet"
    write_parquet(random_flows(random.Random(3), 50), flows)
    argv = ["pps", "flows", "audit", str(SEED), str(flows), "--engine", engine, "--json"]
    code = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('pandas imported:', 'pandas' in sys.modules))\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_module('ppsguard', run_name='__main__')\n"
    )
    assert _run(code) == "pandas imported: False"


@pytest.mark.skipif(not HAVE_PANDAS, reason="pandas is not installed (it comes with [spark])")
def test_pyarrow_still_converts_to_pandas_when_asked() -> None:
    code = (
        "import pyarrow as pa\n"
        "from ppsguard.flows.pandas_free import skip_pandas\n"
        "skip_pandas()\n"
        "print(type(pa.table({'x': [1, 2]}).to_pandas()).__name__)\n"
    )
    assert _run(code) == "DataFrame"
