"""The bind settings of the well-known daemons (harden/data/binds.toml): one test per sample."""

from __future__ import annotations

import pytest

from ppsguard.harden.binds import BindRule, find_setting, rule_for, rules

SAMPLES = [(rule, i) for rule in rules() for i in range(len(rule.samples))]


@pytest.mark.parametrize(("rule", "index"), SAMPLES, ids=[f"{r.name}-{i}" for r, i in SAMPLES])
def test_sample(rule: BindRule, index: int) -> None:
    sample = rule.samples[index]
    found = find_setting(rule, sample.text)
    if sample.line == 0:
        assert found is None
    else:
        assert found == (sample.line, sample.value)


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.name)
def test_every_daemon_is_annotated(rule: BindRule) -> None:
    assert rule.samples, f"{rule.name} has no sample"
    assert rule.files and all(f.startswith("/etc/") for f in rule.files)
    assert rule.narrow and rule.default and rule.source
    for sample in rule.samples:  # a commented-out copy of a matching line never matches
        if sample.line:
            line = sample.text.splitlines()[sample.line - 1]
            assert find_setting(rule, "#" + line) is None


def test_the_daemons_the_brief_names_are_covered() -> None:
    names = {r.name for r in rules()}
    assert {"sshd", "nginx", "redis", "memcached", "mysql", "postgresql", "vsftpd"} <= names
    assert {"dnsmasq"} <= names
    executables = [e for r in rules() for e in r.executables]
    assert len(executables) == len(set(executables)), "an executable belongs to one daemon"


def test_rule_for_uses_the_executable_then_the_command_name() -> None:
    found = rule_for("/usr/sbin/mariadbd", "mariadbd")
    assert found is not None and found.key == "bind-address"
    by_comm = rule_for(None, "memcached")
    assert by_comm is not None and by_comm.name == "memcached"
    assert rule_for("/usr/bin/python3.11", "python3") is None


def test_long_lines_are_not_matched() -> None:
    rule = rule_for(None, "redis-server")
    assert rule is not None
    assert find_setting(rule, "bind " + "1" * 10_000 + "\nbind 127.0.0.1\n") == (2, "127.0.0.1")
