"""Which change the plan picks for a door, over the real audit (observations given as values).

The lab test (tests/lab/test_harden_plan.py) reads units from real cgroups; this table covers
the decisions on top of them: documented door, documented unit, a unit serving another
documented door, an undocumented door, a door bound wider than documented.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from ppsguard.audit import baseline_for, evaluate
from ppsguard.audit.views import Listener, Observations
from ppsguard.harden.plan import NARROW, NONE, STOP, BindChange, ListenerFacts, Plan, build_plan
from ppsguard.harden.units import Holder, unit_target
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import exposure_of
from ppsguard.registry.load import parse_registry

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
REGISTRY = """\
version: 1
default: deny
hosts:
  lab:
    provides:
      - id: cache
        port: 6379/tcp
        from: anywhere
        purpose: documented although risky
      - id: app
        port: 8080/tcp
        from: anywhere
        unit: app
      - id: admin
        port: 9000/tcp
        from: [198.18.0.0/24]
        bind: 127.0.0.1
"""
# port -> (bind address, unit cgroup, pid)
DOORS = {
    6379: ("0.0.0.0", "/system.slice/redis-server.service", 10),
    8080: ("0.0.0.0", "/system.slice/app.service", 11),
    8081: ("0.0.0.0", "/system.slice/app.service", 12),
    7000: ("0.0.0.0", "/system.slice/admin.service", 13),
    9000: ("0.0.0.0", "/system.slice/admin.service", 14),
    5000: ("0.0.0.0", "/system.slice/stray.service", 15),
}


def plan() -> Plan:
    registry = parse_registry(REGISTRY, "registry.yaml")
    baseline, _policy = baseline_for(registry, "lab")
    listeners = tuple(
        Listener(
            protocol=Protocol.TCP,
            family=Family.IPV4,
            address=ipaddress.ip_address(address),
            port=port,
            exposure=exposure_of(ipaddress.ip_address(address)),
            process="redis-server" if port == 6379 else "daemon",
            exe="/usr/bin/redis-server" if port == 6379 else "/usr/sbin/daemon",
            unit=cgroup.rsplit("/", 1)[1],
            pids=(pid,),
        )
        for port, (address, cgroup, pid) in DOORS.items()
    )
    facts = {}
    for item in listeners:
        _address, cgroup, pid = DOORS[item.port]
        target = unit_target([Holder(pid, item.process or "", item.exe, cgroup)])
        bind = (
            BindChange("redis", "bind", "bind 127.0.0.1 -::1", "all", "redis.conf")
            if item.port == 6379
            else None
        )
        facts[item.key] = ListenerFacts((), target, bind, None)
    seen = Observations("lab", NOW, listeners)
    report = evaluate(seen, baseline, registry_file="registry.yaml", host="lab", netns=None)
    return build_plan(report, listeners, facts, baseline, registry=registry)


def test_decisions() -> None:
    made = plan()
    by_port = {c.port: c for c in made.changes}
    # risky but documented: the door is the registry's; narrow the bind, never stop
    assert by_port[6379].action == NARROW
    assert "documented (entry cache)" in by_port[6379].why
    assert 8080 not in by_port  # documented and fine: no change
    # an undocumented port of a unit the registry names
    assert by_port[8081].action == NONE and "entry app" in by_port[8081].why
    # an undocumented port of a unit that serves a documented door (admin, 9000)
    assert by_port[7000].action == NONE and "9000 (entry admin)" in by_port[7000].why
    # the documented door bound wider than documented: no unit change for it either
    assert by_port[9000].action == NONE
    assert {f.type for f in by_port[9000].findings} == {"exposure-widened"}
    # nobody documented this one and nothing else needs its unit
    assert by_port[5000].action == STOP
    assert [u.name for u in made.units] == ["stray.service"]
    assert {"app.service", "app.socket"} <= set(made.protected)
