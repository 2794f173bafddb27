"""Target specifications: addresses, CIDRs, octet/address ranges, hostnames, excludes, scope.

Pure parsing: `parse_targets` turns tokens into `TargetSpec`s (no DNS here), bounded by
`max_hosts`. Expanding them, excluding and the scope check are the scope gate's (`scope.py`);
name resolution lives in `plan.py`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress, IPNetwork

MAX_HOSTS = 1 << 20
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)
_OCTET_RANGE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})-(\d{1,3})$", re.ASCII)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target token: a network/range of addresses, or a hostname to resolve later."""

    token: str
    first: IPAddress | None = None
    last: IPAddress | None = None
    hostname: str | None = None

    @property
    def count(self) -> int:
        if self.first is None or self.last is None:
            return 1
        return int(self.last) - int(self.first) + 1


def _range(token: str, first: IPAddress, last: IPAddress) -> TargetSpec:
    if first.version != last.version or int(last) < int(first):
        raise UsageError("invalid target range", token=token)
    return TargetSpec(token, first, last)


def parse_target(token: str) -> TargetSpec:
    """Parse one target token, or raise UsageError naming it."""
    text = token.strip()
    if not text or len(text) > 300:
        raise UsageError("invalid target", token=token)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        addr = ipaddress.ip_address(text)
        return TargetSpec(token, addr, addr)
    except ValueError:
        pass
    if "/" in text:
        try:
            net: IPNetwork = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise UsageError("invalid target network", token=token) from None
        return TargetSpec(token, net.network_address, net.broadcast_address)
    match = _OCTET_RANGE.match(text)
    if match:
        parts = [int(p) for p in match.groups()]
        if any(p > 255 for p in parts):
            raise UsageError("invalid target range", token=token)
        first = ipaddress.IPv4Address(".".join(str(p) for p in parts[:4]))
        last = ipaddress.IPv4Address(".".join(str(p) for p in [*parts[:3], parts[4]]))
        return _range(token, first, last)
    if "-" in text and (":" in text or text[0].isdigit()):
        left, _, right = text.partition("-")
        try:
            return _range(token, ipaddress.ip_address(left), ipaddress.ip_address(right))
        except ValueError:
            raise UsageError("invalid target range", token=token) from None
    if text.replace(".", "").isdigit() or ":" in text:
        raise UsageError("invalid target address", token=token)
    if not _HOSTNAME.match(text):
        raise UsageError("invalid target", token=token)
    return TargetSpec(token, hostname=text.rstrip(".").lower())


def split_tokens(text: str) -> list[str]:
    """Tokens of an `-iL` list: whitespace/comma separated, `#` starts a comment."""
    tokens: list[str] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0]
        tokens.extend(t for t in re.split(r"[\s,]+", content) if t)
    return tokens


def parse_targets(tokens: Iterable[str], *, max_hosts: int = MAX_HOSTS) -> list[TargetSpec]:
    specs = [parse_target(t) for t in tokens]
    total = sum(s.count for s in specs)
    if total > max_hosts:
        raise UsageError(f"too many target addresses ({total} > {max_hosts})")
    return specs


def parse_networks(tokens: Sequence[str], *, source: str = "scope") -> list[IPNetwork]:
    """CIDR lists for `--scope` files and `--exclude`; a bad token raises UsageError."""
    nets: list[IPNetwork] = []
    for token in tokens:
        spec = parse_target(token)
        if spec.first is None or spec.last is None:
            raise UsageError(f"{source} entries must be addresses or networks", token=token)
        nets.extend(ipaddress.summarize_address_range(spec.first, spec.last))
    return nets
