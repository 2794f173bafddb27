"""The risk catalog: cleartext and legacy services, and services unfit for untrusted networks.

Data lives in `data/risks.toml` (written for ppsguard from common hardening practice). A risk
matches a port when its (port, protocol) is listed, or when a scanner or socket owner reports one
of its service names (a telnetd moved to port 2323 is still telnet).
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ppsguard.errors import InputError
from ppsguard.knowledge.services import builtin_catalog
from ppsguard.model.findings import Severity
from ppsguard.model.net import MAX_PORT, MIN_PORT, Protocol

RISK_KINDS = ("cleartext", "legacy", "exposure")
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_PORT_SPEC = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?/(tcp|udp|sctp)")


@dataclass(frozen=True, slots=True)
class Risk:
    """One known risk of running a service: why it matters and what usually fixes it."""

    id: str
    severity: Severity
    title: str
    reason: str
    remedy: str
    kind: str
    ports: tuple[tuple[int, Protocol], ...]
    services: tuple[str, ...]

    def matches(
        self, port: int, protocol: Protocol, services: frozenset[str] = frozenset()
    ) -> bool:
        """Whether this risk applies to `port`/`protocol` or to any of `services` (lower case)."""
        if (port, protocol) in self.ports:
            return True
        # By name on any port, but only for a protocol the service really uses (mysql/udp: no).
        same_protocol = not self.ports or any(proto == protocol for _, proto in self.ports)
        return same_protocol and not services.isdisjoint(self.services)


def _error(message: str, index: int, token: object) -> InputError:
    return InputError(message, file="risks.toml", token=f"risk[{index}]: {token!r}"[:120])


def _parse_ports(values: Any, index: int) -> tuple[tuple[int, Protocol], ...]:
    if not isinstance(values, list):
        raise _error("ports must be a list", index, values)
    pairs: list[tuple[int, Protocol]] = []
    for value in values:
        match = _PORT_SPEC.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise _error("bad port (want 'N/proto' or 'N-M/proto')", index, value)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if not MIN_PORT <= first <= last <= MAX_PORT or last - first > 64:
            raise _error("bad port range", index, value)
        pairs.extend((port, Protocol(match.group(3))) for port in range(first, last + 1))
    return tuple(dict.fromkeys(pairs))


def parse_risks_toml(text: str) -> list[Risk]:
    """Parse the risk catalog; InputError names the offending entry."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"invalid TOML: {error}", file="risks.toml") from None
    items = document.get("risk")
    if not isinstance(items, list):
        raise InputError("missing [[risk]] entries", file="risks.toml")
    risks: list[Risk] = []
    seen: set[str] = set()
    fields = {"id", "severity", "kind", "title", "ports", "services", "reason", "remedy"}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != fields:
            got = sorted(item) if isinstance(item, dict) else item
            raise _error(f"a risk needs exactly the keys {sorted(fields)}", index, got)
        risk_id = item["id"]
        if not isinstance(risk_id, str) or not _ID.fullmatch(risk_id) or risk_id in seen:
            raise _error("bad or duplicate id", index, risk_id)
        seen.add(risk_id)
        try:
            severity = Severity(item["severity"])
        except ValueError:
            raise _error("bad severity", index, item["severity"]) from None
        if item["kind"] not in RISK_KINDS:
            raise _error(f"kind must be one of {RISK_KINDS}", index, item["kind"])
        for key in ("title", "reason", "remedy"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise _error(f"{key} must be a non-empty string", index, item[key])
        services = item["services"]
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise _error("services must be a list of names", index, services)
        ports = _parse_ports(item["ports"], index)
        if not ports and not services:
            raise _error("a risk needs ports or services", index, risk_id)
        risks.append(
            Risk(
                id=risk_id,
                severity=severity,
                title=item["title"].strip(),
                reason=item["reason"].strip(),
                remedy=item["remedy"].strip(),
                kind=item["kind"],
                ports=ports,
                services=tuple(s.lower() for s in services),
            )
        )
    return risks


@functools.cache
def risk_catalog() -> tuple[Risk, ...]:
    """Every known risk, in catalog order (cached)."""
    text = resources.files("ppsguard.knowledge").joinpath("data/risks.toml").read_text("utf-8")
    return tuple(parse_risks_toml(text))


@functools.cache
def _by_id() -> dict[str, Risk]:
    return {risk.id: risk for risk in risk_catalog()}


def risks_for(port: int, protocol: Protocol | str, service: str | None = None) -> tuple[Risk, ...]:
    """Risks of `port`/`protocol` (and of `service` if given), most severe first."""
    proto = Protocol(str(protocol).lower())
    names: frozenset[str] = frozenset()
    if service:
        # An alias ("microsoft-ds") also matches risks listed under the primary name ("smb").
        wanted = service.strip().lower()
        names = frozenset({wanted, *(e.name.lower() for e in builtin_catalog().ports_for(wanted))})
    found = [risk for risk in risk_catalog() if risk.matches(port, proto, names)]
    return tuple(sorted(found, key=lambda risk: -risk.severity.rank))


def risk_by_id(risk_id: str) -> Risk:
    """The risk with this id; InputError (with a suggestion) if unknown."""
    try:
        return _by_id()[risk_id]
    except KeyError:
        close = difflib.get_close_matches(risk_id, list(_by_id()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
        raise InputError("unknown risk id", token=risk_id, hint=hint) from None
