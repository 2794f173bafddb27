"""Shared test configuration: the lab's fixtures and marker handling come from the package.

Hypothesis profiles: the default runs each property briefly; `fuzz` (HYPOTHESIS_PROFILE=fuzz, as
`make fuzz` sets it) runs the fuzzing harness (tests/property/test_parsers_fuzz.py) at length.
"""

import os
import signal

from hypothesis import HealthCheck, settings

# A suite started in the background (`nohup make test &`) inherits SIGINT and SIGHUP ignored,
# and every child it starts would inherit that too: the tests that send Ctrl-C or a hang-up to
# a pps command, or start sshd, then fail for the way the suite was launched. Give the children
# the defaults back (an exec resets a handled signal to its default, an ignored one stays so).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

# No timing assertions: hypothesis's per-example deadline and its too-slow health check are
# timing checks, and they fail on a loaded machine, so the default profile turns both off.
settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("PPSGUARD_FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

pytest_plugins = ["ppsguard.testing.pytest_plugin", "pytester"]
