"""Observe the machine for `pps harden plan`: the audit, the holders' cgroups, configs, dpkg.

    plan = survey(Path("registry.yaml"))

The audit runs with the local inventory alone (no scan, no firewall: a plan is about what runs
here); its findings and listeners then meet what /proc says of each holder (command, executable,
cgroup path), the daemon's config files (read under `config_root`, bounded), the package lists
of dpkg and, where systemd runs, `systemctl list-sockets`. The decisions are in `plan.py`.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from ppsguard.audit.views import Listener
from ppsguard.harden.binds import BindRule, find_setting, rule_for
from ppsguard.harden.managers import systemd_problem
from ppsguard.harden.packages import DPKG_INFO, packages_of
from ppsguard.harden.plan import BindChange, ListenerFacts, ListenerKey, Plan, build_plan
from ppsguard.harden.units import Holder, parse_list_sockets, unit_target
from ppsguard.model.registry import Registry

CONFIG_LIMIT = 1 << 20  # a config file bigger than 1 MiB is not read
_MAX_FILES = 64  # config files read per daemon (a glob over a huge folder stops here)


def holders_of(pids: Iterable[int]) -> tuple[Holder, ...]:
    """What /proc says of each pid (processes that ended meanwhile are left out)."""
    from ppsguard.inventory.owners import ProcessDescriber

    describe = ProcessDescriber()
    out: list[Holder] = []
    for pid in pids:
        owner = describe.owner(pid)
        cgroup = describe.cgroup(pid)
        if not owner.comm and cgroup is None:
            continue
        out.append(Holder(pid, owner.comm, owner.exe, cgroup))
    return tuple(out)


_COMMAND_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def invoked_paths(exe: str | None, cmdline: str | None) -> tuple[str, ...]:
    """The paths whose package names the program: the name it was started by, when that is a
    link to the running executable (Debian's /usr/bin/redis-server -> redis-check-rdb: the
    package is redis-server, not redis-tools), then the executable itself."""
    if not exe:
        return ()
    argv0 = (cmdline or "").split(" ", 1)[0]
    found: list[str] = []
    if argv0:
        candidates = [argv0] if argv0.startswith("/") else [f"{d}/{argv0}" for d in _COMMAND_DIRS]
        if "/" not in argv0 or argv0.startswith("/"):
            for candidate in candidates:
                if candidate != exe and os.path.realpath(candidate) == exe:
                    found.append(candidate)
                    break
    return (*found, exe)


def read_bind(rule: BindRule, config_root: Path) -> BindChange:
    """Where `rule`'s key is set in the daemon's config files under `config_root`."""
    from ppsguard.errors import PpsError
    from ppsguard.infile import read_text

    first: str | None = None
    for pattern in rule.files:
        matches = sorted(glob.glob(str(config_root / pattern.lstrip("/"))))[:_MAX_FILES]  # noqa: PTH207 -- a glob with folders in it
        for name in matches:
            first = first or name
            try:
                text = read_text(name, limit=CONFIG_LIMIT, what="config file", errors="replace")
            except PpsError:
                continue
            found = find_setting(rule, text)
            if found is not None:
                return _bind(rule, name, found[0], found[1])
    return _bind(rule, first, None, None)


def _bind(rule: BindRule, file: str | None, line: int | None, value: str | None) -> BindChange:
    return BindChange(
        daemon=rule.name,
        key=rule.key,
        narrow=rule.narrow,
        default=rule.default,
        source=rule.source,
        file=file,
        line=line,
        current=value,
    )


def listed_sockets() -> dict[tuple[str, int], str]:
    """`systemctl list-sockets` as {(address, port): socket unit}; {} without systemd."""
    if systemd_problem() is not None:
        return {}
    argv = ["systemctl", "list-sockets", "--all", "--full", "--no-legend", "--no-pager"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_list_sockets(done.stdout) if done.returncode == 0 else {}


def _listed(item: Listener, listing: Mapping[tuple[str, int], str]) -> str | None:
    address = str(item.address)
    for candidate in (address, "*", "::", "0.0.0.0"):
        if (candidate, item.port) in listing:
            return listing[(candidate, item.port)]
    return None


def listener_facts(
    listeners: Iterable[Listener],
    *,
    config_root: Path = Path("/"),
    init_pid: int = 1,
    dpkg_info: Path = DPKG_INFO,
    listing: Mapping[tuple[str, int], str] | None = None,
) -> dict[ListenerKey, ListenerFacts]:
    """The facts of every listener: holders, unit, bind setting and package."""
    items = list(listeners)
    named = {i.key: invoked_paths(i.exe, i.cmdline) for i in items}
    packages = packages_of({p for paths in named.values() for p in paths}, dpkg_info)
    sockets = listed_sockets() if listing is None else listing
    binds: dict[str, BindChange] = {}
    out: dict[ListenerKey, ListenerFacts] = {}
    for item in items:
        holders = holders_of(item.pids)
        target = unit_target(holders, init_pid=init_pid, listed_socket=_listed(item, sockets))
        rule = rule_for(item.exe, item.process)
        bind: BindChange | None = None
        if rule is not None:
            bind = binds.get(rule.name) or read_bind(rule, config_root)
            binds[rule.name] = bind
        package = next((packages[p] for p in named[item.key] if p in packages), None)
        out[item.key] = ListenerFacts(holders, target, bind, package)
    return out


def survey(
    registry_path: Path | Registry | None,
    *,
    host: str | None = None,
    netns: str | None = None,
    config_root: Path = Path("/"),
    init_pid: int = 1,
    dpkg_info: Path = DPKG_INFO,
) -> Plan:
    """Audit this machine (or `netns`) and plan the change for each undocumented or risky
    listener (see `plan.py`)."""
    import socket

    from ppsguard.audit.machine import baseline_for, evaluate
    from ppsguard.audit.sources import observe

    registry: Registry | None = None
    if isinstance(registry_path, Registry):
        registry = registry_path
    elif registry_path is not None:
        from ppsguard.registry.load import load_registry

        registry = load_registry(registry_path)
    baseline, policy = baseline_for(registry, host)
    name = baseline.host.name if baseline.host else (host or netns or socket.gethostname())
    seen = observe(
        host=name, baseline=baseline, policy=policy, netns=netns, scan=False, firewall=False
    )
    report = evaluate(
        seen,
        baseline,
        registry_file=registry.files[0] if registry and registry.files else None,
        host=baseline.host.name if baseline.host else host,
        netns=netns,
    )
    listeners = seen.listeners or ()
    facts = listener_facts(
        listeners,
        config_root=config_root,
        init_pid=init_pid,
        dpkg_info=dpkg_info,
        listing=None if netns is None else {},
    )
    return build_plan(report, listeners, facts, baseline, registry=registry, netns=netns)


__all__ = ["holders_of", "invoked_paths", "listener_facts", "read_bind", "survey"]
