"""TRW's arithmetic (Jung et al. 2004, theta0 0.8, theta1 0.2, PD 0.99, PF 0.01) and variants."""

from __future__ import annotations

import ipaddress
import math

import pytest

from ppsguard.monitor.trw import Outcome, PerPortTrw, Trw, TrwParameters, Verdict

SCANNER = ipaddress.ip_address("198.18.5.5")
TARGET = ipaddress.ip_address("198.18.0.2")


def host(n: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.18.1.0")) + n)


def test_thresholds_are_the_papers() -> None:
    p = TrwParameters()
    assert math.exp(p.upper) == pytest.approx(99.0)
    assert math.exp(p.lower) == pytest.approx(0.01 / 0.99)
    assert math.exp(p.failure_step) == pytest.approx(4.0)
    assert math.exp(p.success_step) == pytest.approx(0.25)


def test_four_failed_first_contacts_decide_scanner_three_do_not() -> None:
    trw = Trw()
    decisions = [trw.observe(float(i), SCANNER, host(i), 80, Outcome.FAILURE) for i in range(4)]
    assert decisions[:3] == [None, None, None]
    assert decisions[3] is not None and decisions[3].verdict is Verdict.SCANNER
    assert decisions[3].walk.attempts == 4


def test_four_successes_decide_benign_and_restart_the_walk() -> None:
    trw = Trw()
    results = [trw.observe(float(i), SCANNER, host(i), 80, Outcome.SUCCESS) for i in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].verdict is Verdict.BENIGN
    assert trw.verdict(SCANNER) is Verdict.PENDING  # restarted
    # the same source turning hostile later is still caught
    later = [trw.observe(10.0 + i, SCANNER, host(100 + i), 80, Outcome.FAILURE) for i in range(4)]
    assert later[-1] is not None and later[-1].verdict is Verdict.SCANNER


def test_mixed_walk_follows_the_likelihood_ratio() -> None:
    # failure, success, failure, failure, failure: ratio 4 * 0.25 * 4 * 4 * 4 = 64 < 99, then 256
    trw = Trw()
    outcomes = [Outcome.FAILURE, Outcome.SUCCESS, Outcome.FAILURE, Outcome.FAILURE, Outcome.FAILURE]
    decided = [trw.observe(float(i), SCANNER, host(i), 80, o) for i, o in enumerate(outcomes)]
    assert decided[:4] == [None] * 4
    assert decided[4] is None  # 4 * .25 * 4 * 4 * 4 = 64
    sixth = trw.observe(6.0, SCANNER, host(9), 80, Outcome.FAILURE)
    assert sixth is not None and sixth.verdict is Verdict.SCANNER  # 256


def test_repeated_contacts_are_not_first_contacts() -> None:
    trw = Trw()
    for i in range(10):
        assert trw.observe(float(i), SCANNER, TARGET, 80 + i, Outcome.FAILURE) is None
    assert trw.verdict(SCANNER) is Verdict.PENDING  # plain TRW never decides a vertical scan


def test_per_port_variant_decides_a_vertical_scan_after_four_probes() -> None:
    trw = PerPortTrw()
    decided = [trw.observe(float(i), SCANNER, TARGET, 20 + i, Outcome.FAILURE) for i in range(4)]
    assert decided[3] is not None and decided[3].verdict is Verdict.SCANNER


def test_memory_is_bounded_and_evictions_counted() -> None:
    trw = Trw(max_sources=100, max_targets=8)
    for n in range(1000):
        source = ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.19.0.0")) + n)
        trw.observe(float(n), source, TARGET, 80, Outcome.SUCCESS)
    assert len(trw.walks) == 100 and trw.evicted_sources == 900
    for n in range(20):
        trw.observe(float(n), SCANNER, host(n), 80, Outcome.SUCCESS)
    assert len(trw.walks[SCANNER].contacts) <= 8


def test_repeating_one_source_object_decides_as_fresh_equal_objects_do() -> None:
    """The walk of the source seen last is reused by identity; that shortcut must not change a
    decision, the LRU's order or what is evicted, whatever the interleaving."""
    import random

    rng = random.Random(11)
    pool = [ipaddress.IPv4Address(f"198.18.7.{n}") for n in range(6)]
    steps = [
        (rng.randrange(6), rng.randrange(40), rng.choice([Outcome.SUCCESS, Outcome.FAILURE]))
        for _ in range(3000)
    ]
    for max_sources in (0, 1, 3, 100):
        shared, fresh = Trw(max_sources=max_sources), Trw(max_sources=max_sources)
        for time, (source, target, outcome) in enumerate(steps):
            a = shared.observe(float(time), pool[source], host(target), 80, outcome)
            b = fresh.observe(
                float(time), ipaddress.IPv4Address(str(pool[source])), host(target), 80, outcome
            )
            assert (a and (a.verdict, a.walk.attempts)) == (b and (b.verdict, b.walk.attempts))
        assert list(shared.walks) == list(fresh.walks)
        assert shared.evicted_sources == fresh.evicted_sources
