"""Service names for ports: our catalog (data/services.toml) merged with /etc/services.

`data/services.toml` was written for ppsguard from IANA's service name and port number registry
(CC0) and common practice. Debian's /etc/services is GPL-2, so it is only read at run time and
merged in below ours (ours wins on conflicts), never copied into our data.

Data format (one inline table per service):

    services = [
      { name = "mysql", aliases = ["mariadb"], tcp = [3306], udp = [3306], description = "..." },
      { name = "x11", tcp = ["6000-6007"], description = "..." },
    ]
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ppsguard.errors import InputError
from ppsguard.model.net import MAX_PORT, MIN_PORT, Protocol

ETC_SERVICES_MAX_BYTES = 2_000_000
ETC_SERVICES_PATH = Path("/etc/services")
_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_MAX_EXPANDED_RANGE = 64  # a data entry like "6000-6007" may cover at most this many ports


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One service name assigned to one port and protocol."""

    name: str
    port: int
    protocol: Protocol
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The primary name followed by the aliases."""
        return (self.name, *self.aliases)


class ServiceCatalog:
    """Lookups by (port, protocol) and by name or alias. Earlier entries take precedence."""

    def __init__(self, entries: Iterable[ServiceEntry]) -> None:
        self._entries: tuple[ServiceEntry, ...] = tuple(entries)
        self._by_port: dict[tuple[int, Protocol], list[ServiceEntry]] = {}
        self._by_name: dict[str, list[ServiceEntry]] = {}
        for entry in self._entries:
            self._by_port.setdefault((entry.port, entry.protocol), []).append(entry)
            for name in dict.fromkeys(n.lower() for n in entry.names):
                self._by_name.setdefault(name, []).append(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def all_entries(self) -> tuple[ServiceEntry, ...]:
        return self._entries

    def entries_for(self, port: int, protocol: Protocol | str) -> tuple[ServiceEntry, ...]:
        """Every entry on (port, protocol), highest precedence first."""
        return tuple(self._by_port.get((port, Protocol(protocol)), ()))

    def names_for(self, port: int, protocol: Protocol | str) -> tuple[str, ...]:
        """All names (primary first, then aliases, then other services) on (port, protocol)."""
        names: dict[str, None] = {}
        for entry in self.entries_for(port, protocol):
            for name in entry.names:
                names.setdefault(name, None)
        return tuple(names)

    def primary_name(self, port: int, protocol: Protocol | str) -> str | None:
        entries = self.entries_for(port, protocol)
        return entries[0].name if entries else None

    def ports_for(self, name: str) -> tuple[ServiceEntry, ...]:
        """Entries whose name or alias is `name` (case-insensitive), ordered by port, protocol."""
        found = self._by_name.get(name.strip().lower(), [])
        return tuple(sorted(found, key=lambda e: (e.port, str(e.protocol))))

    def known_names(self) -> tuple[str, ...]:
        """Every name and alias (lower case), for suggestions."""
        return tuple(self._by_name)

    def pairs(self) -> frozenset[tuple[int, Protocol]]:
        """The distinct (port, protocol) pairs that have at least one name."""
        return frozenset(self._by_port)


def merge_catalogs(
    primary: Sequence[ServiceEntry], secondary: Sequence[ServiceEntry]
) -> ServiceCatalog:
    """Ours first; a secondary entry is kept only if its name is not one of ours.

    So a name defined by us always resolves to our ports ("ours wins"), while a port we do not
    know still gets the secondary source's name, and a port we do know gains its extra names.
    """
    ours = {name.lower() for entry in primary for name in entry.names}
    extra = [e for e in secondary if e.name.lower() not in ours]
    cleaned = [
        ServiceEntry(
            e.name,
            e.port,
            e.protocol,
            tuple(a for a in e.aliases if a.lower() not in ours),
            e.description,
        )
        for e in extra
    ]
    return ServiceCatalog([*primary, *cleaned])


def _data_error(message: str, index: int, token: object) -> InputError:
    return InputError(message, file="services.toml", token=f"services[{index}]: {token!r}"[:120])


def _expand_ports(values: Any, index: int) -> list[int]:
    if not isinstance(values, list):
        raise _data_error("ports must be a list", index, values)
    ports: list[int] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            first = last = value
        elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}-[0-9]{1,5}", value):
            first, last = (int(part) for part in value.split("-"))
        else:
            raise _data_error("bad port (want a number or 'N-M')", index, value)
        if not MIN_PORT <= first <= last <= MAX_PORT or last - first >= _MAX_EXPANDED_RANGE:
            raise _data_error("bad port range", index, value)
        ports.extend(range(first, last + 1))
    return ports


def parse_services_toml(text: str) -> list[ServiceEntry]:
    """Parse our services data file into entries (one per name, port and protocol).

    Raises InputError naming the offending entry on malformed data.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"invalid TOML: {error}", file="services.toml") from None
    services = document.get("services")
    if not isinstance(services, list):
        raise InputError("missing 'services' list", file="services.toml")
    entries: list[ServiceEntry] = []
    for index, item in enumerate(services):
        if not isinstance(item, dict):
            raise _data_error("service must be a table", index, item)
        unknown = set(item) - {"name", "aliases", "tcp", "udp", "sctp", "description"}
        if unknown:
            raise _data_error("unknown keys", index, sorted(unknown))
        name, aliases, description = (
            item.get("name"),
            item.get("aliases", []),
            item.get("description", ""),
        )
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise _data_error("bad service name", index, name)
        if not isinstance(aliases, list) or not all(
            isinstance(a, str) and _NAME.fullmatch(a) for a in aliases
        ):
            raise _data_error("bad aliases", index, aliases)
        if not isinstance(description, str):
            raise _data_error("bad description", index, description)
        if not any(proto.value in item for proto in _PROTOCOLS):
            raise _data_error("service has no ports", index, name)
        for proto in _PROTOCOLS:
            for port in _expand_ports(item.get(proto.value, []), index):
                entries.append(ServiceEntry(name, port, proto, tuple(aliases), description))
    return entries


def parse_etc_services(text: str) -> list[ServiceEntry]:
    """Parse /etc/services text leniently: `name port/proto [aliases...] [# comment]`.

    Lines that do not fit are skipped (the file is not ours to reject); never raises.
    """
    entries: list[ServiceEntry] = []
    for raw_line in text.splitlines():
        body, _, comment = raw_line.partition("#")
        fields = body.split()
        if len(fields) < 2:
            continue
        name, port_proto, *aliases = fields
        port_text, slash, proto_text = port_proto.partition("/")
        if not slash or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            continue
        port = int(port_text)
        if not MIN_PORT <= port <= MAX_PORT or proto_text.lower() not in {
            p.value for p in _PROTOCOLS
        }:
            continue
        if not _NAME.fullmatch(name):
            continue
        good_aliases = tuple(a for a in aliases if _NAME.fullmatch(a))
        description = " ".join(comment.split())[:200]
        entries.append(
            ServiceEntry(name, port, Protocol(proto_text.lower()), good_aliases, description)
        )
    return entries


def load_builtin_entries() -> list[ServiceEntry]:
    """Our own data file, shipped inside the package."""
    return list(_builtin_entries())


@functools.cache
def _builtin_entries() -> tuple[ServiceEntry, ...]:
    """The data file parsed once per process: `builtin_catalog` and `default_catalog` both need
    it, and `pps port 22` used to parse it twice (about 12 ms each with tomllib)."""
    text = resources.files("ppsguard.knowledge").joinpath("data/services.toml").read_text("utf-8")
    return tuple(parse_services_toml(text))


def read_etc_services(path: Path = ETC_SERVICES_PATH) -> list[ServiceEntry]:
    """/etc/services read at run time (empty if absent or unreadable)."""
    from ppsguard.errors import PpsError
    from ppsguard.infile import read_text

    try:
        text = read_text(path, limit=ETC_SERVICES_MAX_BYTES, what="services file", errors="replace")
    except PpsError:
        return []
    return parse_etc_services(text)


@functools.cache
def builtin_catalog() -> ServiceCatalog:
    """Our data only, without /etc/services (reproducible across machines)."""
    return ServiceCatalog(load_builtin_entries())


@functools.cache
def default_catalog() -> ServiceCatalog:
    """Our data merged with this host's /etc/services (ours wins). Cached for the process."""
    return merge_catalogs(load_builtin_entries(), read_etc_services())


def service_name(port: int, protocol: Protocol | str) -> str | None:
    """Primary name of `port`/`protocol` in the default catalog: (22, "tcp") -> "ssh"."""
    try:
        proto = Protocol(str(protocol).lower())
    except ValueError:
        return None
    return default_catalog().primary_name(port, proto)
