"""Pytest fixtures and the `lab` marker on top of the network lab.

Tests marked `@pytest.mark.lab` skip with the reason when the lab cannot run here (not root, no
namespaces) — and fail instead when PPSGUARD_REQUIRE_LAB=1, so CI never passes by skipping.
`lab_factory(hosts)` starts a lab that is torn down after the test, whatever the test did.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import pytest

from ppsguard.lab.hosts import HostSpec, Lab
from ppsguard.lab.namespaces import clean_leftovers, lab_unavailable_reason

LabFactory = Callable[..., Lab]  # (hosts, subnet4=None, subnet6=None)


def lab_required() -> bool:
    return os.environ.get("PPSGUARD_REQUIRE_LAB", "") not in ("", "0")


def skip_unless_available(reason: str | None) -> None:
    """Nothing when `reason` is None; else skip the calling test, or fail it when
    PPSGUARD_REQUIRE_LAB=1 (CI never passes by skipping)."""
    if reason is None:
        return
    if lab_required():
        pytest.fail(f"PPSGUARD_REQUIRE_LAB=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def require_lab() -> None:
    """Skip (or fail, when required) the calling test if the lab is unavailable."""
    skip_unless_available(lab_unavailable_reason())


def pytest_sessionstart(session: pytest.Session) -> None:
    if lab_unavailable_reason() is None:
        clean_leftovers()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("lab") is not None:
        require_lab()


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    """Make labs inside a test: `lab = lab_factory(["a", "b"])`; all are removed afterwards."""
    require_lab()
    labs: list[Lab] = []

    def make(
        hosts: Sequence[str | HostSpec], subnet4: str | None = None, subnet6: str | None = None
    ) -> Lab:
        lab = Lab(hosts, subnet4=subnet4, subnet6=subnet6)
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        for lab in labs:
            lab.stop()
