"""Port specifications (`22,80,1000-2000`, `-`, `T:`/`U:` prefixes) and our own top-ports list.

Pure: `parse_ports` takes the spec text; `parse_top_ports` takes the TOML text of
`data/top_ports.toml` (our ranked list, see its header for provenance — nmap's data files are
never read). `load_top_ports` reads the packaged file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from ppsguard.errors import UsageError
from ppsguard.model.net import Protocol

_MAX_SPEC = 100_000


@dataclass(frozen=True, slots=True)
class PortSpec:
    """The ports to probe, per protocol, in ascending order (probe order is permuted later)."""

    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()

    def for_protocol(self, protocol: Protocol) -> tuple[int, ...]:
        return self.udp if protocol is Protocol.UDP else self.tcp

    def __len__(self) -> int:
        return len(self.tcp) + len(self.udp)


def _number(text: str, token: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise UsageError("invalid port", token=token)
    value = int(text)
    if not 0 <= value <= 65535:
        raise UsageError("port out of range 0-65535", token=token)
    return value


def _items(text: str, token: str) -> set[int]:
    out: set[int] = set()
    if text in ("-", ""):
        if text == "":
            raise UsageError("empty port item", token=token)
        return set(range(1, 65536))
    if "-" in text:
        left, _, right = text.partition("-")
        first = _number(left, token) if left else 1
        last = _number(right, token) if right else 65535
        if first > last:
            raise UsageError("port range is reversed", token=token)
        return set(range(first, last + 1))
    out.add(_number(text, token))
    return out


def parse_ports(spec: str, *, default: Protocol = Protocol.TCP, both: bool = False) -> PortSpec:
    """Parse `-p`. Items without a `T:`/`U:` prefix go to `default` (or to both with `both`)."""
    if len(spec) > _MAX_SPEC:
        raise UsageError("port specification too long")
    text = spec.strip()
    if not text:
        raise UsageError("empty port specification", token=spec)
    tcp: set[int] = set()
    udp: set[int] = set()
    current: Protocol | None = None
    for raw in text.split(","):
        token = raw.strip()
        item = token
        upper = item[:2].upper()
        if upper in ("T:", "U:"):
            current = Protocol.TCP if upper == "T:" else Protocol.UDP
            item = item[2:]
        elif upper == "S:":
            raise UsageError("SCTP ports are not supported", token=token)
        ports = _items(item, token or raw)
        targets = (
            [current]
            if current is not None
            else ([Protocol.TCP, Protocol.UDP] if both else [default])
        )
        for proto in targets:
            (udp if proto is Protocol.UDP else tcp).update(ports)
    return PortSpec(tuple(sorted(tcp)), tuple(sorted(udp)))


def parse_top_ports(text: str) -> dict[Protocol, tuple[int, ...]]:
    """Ranked, de-duplicated lists from the TOML text of our top-ports file."""
    data = tomllib.loads(text)
    ranked: dict[Protocol, tuple[int, ...]] = {}
    for proto in (Protocol.TCP, Protocol.UDP):
        seen: dict[int, None] = {}
        for value in data.get(str(proto), []):
            if not isinstance(value, int) or not 1 <= value <= 65535:
                raise UsageError("invalid port in top-ports list", token=str(value))
            seen.setdefault(value, None)
        ranked[proto] = tuple(seen)
    return ranked


def load_top_ports() -> dict[Protocol, tuple[int, ...]]:
    text = resources.files("ppsguard.scan").joinpath("data/top_ports.toml").read_text("utf-8")
    return parse_top_ports(text)


def top_ports(
    n: int, protocol: Protocol, ranked: dict[Protocol, tuple[int, ...]] | None = None
) -> tuple[int, ...]:
    """The first `n` ports of our ranking; past its end, remaining ports in numeric order."""
    if not 1 <= n <= 65535:
        raise UsageError("--top-ports must be 1-65535", token=str(n))
    ranking = (ranked or load_top_ports())[protocol]
    chosen = list(ranking[:n])
    if len(chosen) < n:
        have = set(chosen)
        for port in range(1, 65536):
            if len(chosen) >= n:
                break
            if port not in have:
                chosen.append(port)
    return tuple(sorted(chosen))
