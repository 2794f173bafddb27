"""The `ppsguard.harden-plan` document (`pps harden plan --json`, `-o PLAN`; read by `apply`).

    {"schema": "ppsguard.harden-plan", "version": 1, "host": "web1",
     "created_at": "2026-12-02T12:00:00+00:00", "registry": "registry.yaml", "netns": null,
     "units": [{"name": "redis-server.service", "doors": ["tcp/0.0.0.0:6379"]}],
     "protected_units": ["ssh.service", "ssh.socket"],
     "changes": [{"protocol": "tcp", "address": "0.0.0.0", "port": 6379, "service": "redis",
                  "findings": [{"id": "...", "type": "unregistered-listener",
                                "severity": "medium", "title": "..."}],
                  "action": "stop-disable", "why": "...", "kind": "service",
                  "process": "redis-server", "exe": "/usr/bin/redis-server", "user": "redis",
                  "pids": [812], "cgroup": "/system.slice/redis-server.service",
                  "service_unit": "redis-server.service", "socket_unit": null,
                  "container": null, "package": "redis-server",
                  "bind": {"daemon": "redis", "key": "bind", "file": "/etc/redis/redis.conf",
                           "line": 87, "current": "* -::*", "narrow": "bind 127.0.0.1 -::1",
                           "default": "...", "source": "redis.conf, NETWORK section, bind"}}],
     "gaps": []}

`units` is what `pps harden apply` stops and disables, in order (socket units first);
`protected_units` are the units the registry documents, which apply refuses even when a
hand-edited plan lists them. Built from `harden.plan.Plan` and read back into it. Pure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from ppsguard.harden.plan import BindChange, Change, FindingRef, Plan, UnitAction
from ppsguard.report.documents import loader, stamp

HARDEN_PLAN_SCHEMA = "ppsguard.harden-plan"


def _change(change: Change) -> dict[str, Any]:
    row = dataclasses.asdict(change)
    row["pids"] = list(change.pids)
    row["findings"] = [dataclasses.asdict(f) for f in change.findings]
    return row


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as a `ppsguard.harden-plan` document."""
    return {
        **stamp(HARDEN_PLAN_SCHEMA),
        "host": plan.host,
        "created_at": plan.created_at.isoformat(timespec="seconds"),
        "registry": plan.registry,
        "netns": plan.netns,
        "units": [{"name": u.name, "doors": list(u.doors)} for u in plan.units],
        "protected_units": list(plan.protected),
        "changes": [_change(c) for c in plan.changes],
        "gaps": list(plan.gaps),
    }


def _load_change(row: Mapping[str, Any]) -> Change:
    fields = dict(row)
    fields["pids"] = tuple(row["pids"])
    fields["findings"] = tuple(FindingRef(**f) for f in row["findings"])
    fields["bind"] = BindChange(**row["bind"]) if row.get("bind") else None
    return Change(**fields)


@loader(HARDEN_PLAN_SCHEMA)
def load_plan(value: Mapping[str, Any]) -> Plan:
    """Read a `ppsguard.harden-plan` document back into a Plan (validated first)."""
    return Plan(
        host=value["host"],
        created_at=dt.datetime.fromisoformat(value["created_at"]),
        registry=value["registry"],
        netns=value["netns"],
        changes=tuple(_load_change(c) for c in value["changes"]),
        units=tuple(UnitAction(u["name"], tuple(u["doors"])) for u in value["units"]),
        protected=tuple(value["protected_units"]),
        gaps=tuple(value["gaps"]),
    )


__all__ = ["HARDEN_PLAN_SCHEMA", "load_plan", "plan_document"]
