"""Spark fixtures: one local[2] session for the whole test session (a JVM takes seconds to
start). Without Java or pyspark the tests skip — and fail when PPSGUARD_REQUIRE_LAB=1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ppsguard.flows.engines.spark import SparkEngine
from ppsguard.testing.spark import require_spark


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    require_spark()
    engine = SparkEngine("local[2]", partitions=2, progress=False)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
