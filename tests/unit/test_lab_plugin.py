"""Lab tests skip with a reason where the lab cannot run, and fail when the lab is required."""

from __future__ import annotations

import pytest

from ppsguard.lab import namespaces as lab

LAB_TEST = """
import pytest

@pytest.mark.lab
def test_needs_the_lab():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def no_lab_here(monkeypatch):
    monkeypatch.setitem(lab._probe_cache, "reason", "the network lab needs root (test)")


def test_skips_with_the_reason_when_not_required(pytester, monkeypatch, no_lab_here):
    monkeypatch.delenv("PPSGUARD_REQUIRE_LAB", raising=False)
    pytester.makepyfile(LAB_TEST)
    result = pytester.runpytest_inprocess(
        "-p", "ppsguard.testing.pytest_plugin", "-rs", "-o", "markers=lab: needs the lab"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*the network lab needs root (test)*"])


def test_fails_when_required(pytester, monkeypatch, no_lab_here):
    monkeypatch.setenv("PPSGUARD_REQUIRE_LAB", "1")
    pytester.makepyfile(LAB_TEST)
    result = pytester.runpytest_inprocess(
        "-p", "ppsguard.testing.pytest_plugin", "-o", "markers=lab: needs the lab"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*PPSGUARD_REQUIRE_LAB=1 but the network lab needs root*"])
