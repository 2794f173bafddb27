"""Load and validate a PPS registry (YAML) into `ppsguard.model.registry.Registry`.

`parse_registry(text, file, read_include=...)` is the pure entry point: it takes text and a
callable that returns the text of an included file. `load_registry(path)` is the edge: it reads
files through the one bounded reader (`ppsguard.infile`: regular files only, at most MAX_BYTES,
`-` for standard input), resolves includes relative to the
including file and refuses any that leave the registry's folder. Every error is an InputError with
file:line:column and, where a name was misspelt, a `did you mean` hint. Nothing is ever executed:
see `yamlsafe` for the YAML hardening. The format is described in docs/registry.md and, for
editors, in the JSON Schema `policy/data/registry.schema.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ppsguard.errors import InputError
from ppsguard.infile import read_text
from ppsguard.model.registry import (
    ANYWHERE,
    Action,
    HostDef,
    NetworkDef,
    Registry,
    RoleDef,
    ServiceDef,
    ServicePort,
    SourceLocation,
)
from ppsguard.registry.entries import EntryBuilder, as_str, as_str_list, err, mapping, optional_bool
from ppsguard.registry.naming import NetworkResolver, parse_address, parse_port_text, suggest
from ppsguard.registry.yamlsafe import MAX_BYTES, Node, compose_text

IncludeReader = Callable[[str, str, SourceLocation], tuple[str, str]]
"""(including file, include text as written, where written) -> (file name, text)."""

TOP_KEYS = (
    "version",
    "description",
    "include",
    "default",
    "default_log",
    "networks",
    "services",
    "roles",
    "hosts",
)
HOST_KEYS = ("addresses", "roles", "provides", "denies", "uses", "default", "default_log")
MAX_INCLUDES = 64


def load_registry(path: str | Path) -> Registry:
    """Read a registry file and its includes from disk; see the module docstring."""
    main = Path(path)
    root = main.resolve().parent

    def read(file: str) -> str:
        return read_text(file, limit=MAX_BYTES, what="registry")

    def read_include(including: str, name: str, at: SourceLocation) -> tuple[str, str]:
        target = (Path(including).parent / name).resolve()
        if not target.is_relative_to(root):
            raise InputError(
                f"include {name!r} leaves the registry's folder {root}",
                file=at.file,
                line=at.line,
                column=at.column,
                hint="keep included files next to the registry or below it",
            )
        shown = str(main.parent / target.relative_to(root))
        if not target.exists():
            raise InputError(
                f"included file {name!r} not found", file=at.file, line=at.line, column=at.column
            )
        return shown, read(str(target))

    return parse_registry(read(str(main)), str(main), read_include=read_include)


def parse_registry(
    text: str, file: str = "<registry>", *, read_include: IncludeReader | None = None
) -> Registry:
    """Parse registry text (and includes through `read_include`) into a validated Registry."""
    docs: list[tuple[str, dict[str, tuple[Node, Node]]]] = []
    _collect(text, file, read_include, stack=[], docs=docs, seen=set())
    main_doc = docs[0][1]
    networks: dict[str, NetworkDef] = {}
    services: dict[str, ServiceDef] = {}
    role_nodes: dict[str, tuple[Node, Node]] = {}
    host_nodes: dict[str, tuple[Node, Node]] = {}
    for _name, doc in docs:
        for key, value in _section(doc, "networks"):
            _unique(networks, key, network=True)
            networks[str(key.value)] = _network(key, value)
        for key, value in _section(doc, "services"):
            _unique(services, key)
            services[str(key.value)] = _service(key, value)
        for key, value in _section(doc, "roles"):
            _unique(role_nodes, key)
            role_nodes[str(key.value)] = (key, value)
        for key, value in _section(doc, "hosts"):
            _unique(host_nodes, key)
            host_nodes[str(key.value)] = (key, value)
    resolver = NetworkResolver(networks)
    for definition in networks.values():
        resolver.resolve_one(definition.name, definition.location)
    builder = EntryBuilder(services, resolver)
    roles = tuple(_role(k, v, builder) for k, v in role_nodes.values())
    hosts = tuple(_host(k, v, builder, role_nodes) for k, v in host_nodes.values())
    default, default_location = _action_field(main_doc, "default")
    default_log = _bool_field(main_doc, "default_log")
    description = main_doc.get("description")
    return Registry(
        networks=tuple(networks.values()),
        services=tuple(services.values()),
        roles=roles,
        hosts=hosts,
        default=default or Action.DENY,
        default_log=bool(default_log),
        files=tuple(name for name, _ in docs),
        description=as_str(description[1]) if description else None,
        default_location=default_location,
    )


def _collect(
    text: str,
    file: str,
    read_include: IncludeReader | None,
    *,
    stack: list[str],
    docs: list[tuple[str, dict[str, tuple[Node, Node]]]],
    seen: set[str],
) -> None:
    root = compose_text(text, file)
    if root is None:
        if not stack:
            raise InputError("the registry is empty", file=file, line=1, column=1)
        docs.append((file, {}))
        return
    doc = mapping(root, "a registry document")
    for key, (knode, _v) in doc.items():
        if key not in TOP_KEYS:
            raise err(f"unknown key {key!r}", knode, suggest(key, TOP_KEYS))
    if "version" in doc:
        version = doc["version"][1]
        if version.value != 1:
            raise err("unsupported registry version", version, "this ppsguard reads version: 1")
    docs.append((file, doc))
    seen.add(file)
    if "include" not in doc:
        return
    for item in as_str_list(doc["include"][1]):
        name = str(item.value)
        if read_include is None:
            raise err("includes need a file-based registry", item)
        shown, included_text = read_include(file, name, item.location)
        if shown in stack or shown == file:
            raise err(f"include cycle: {' -> '.join([*stack, file, shown])}", item)
        if shown in seen:
            continue
        if len(docs) >= MAX_INCLUDES:
            raise err(f"more than {MAX_INCLUDES} included files", item)
        _collect(included_text, shown, read_include, stack=[*stack, file], docs=docs, seen=seen)


def _section(doc: dict[str, tuple[Node, Node]], name: str) -> list[tuple[Node, Node]]:
    if name not in doc:
        return []
    value = doc[name][1]
    if value.value is None:
        return []
    return list(mapping(value, f"the {name} section").values())


def _unique(existing: Mapping[str, object], key: Node, *, network: bool = False) -> None:
    name = key.value
    if not isinstance(name, str) or not name.strip():
        raise err(f"names must be non-empty text, not {name!r}", key, "quote a numeric name")
    if network and (name == ANYWHERE or name[0].isdigit() or ":" in name):
        raise err(f"{name!r} cannot be a name", key, "it reads as anywhere or as an address")
    if name in existing:
        raise err(f"{name!r} is defined twice", key)


def _network(key: Node, value: Node) -> NetworkDef:
    excluded: list[Node] = []
    description = None
    if value.kind == "mapping":
        fields = mapping(value, "a network")
        for name, (knode, _v) in fields.items():
            if name not in ("addresses", "except", "description"):
                raise err(
                    f"unknown key {name!r} in network",
                    knode,
                    suggest(name, ["addresses", "except", "description"]),
                )
        if "addresses" not in fields:
            raise err("a network needs addresses:", value)
        members = as_str_list(fields["addresses"][1])
        if "except" in fields:
            excluded = as_str_list(fields["except"][1])
        if "description" in fields:
            description = as_str(fields["description"][1])
    else:
        members = as_str_list(value)
    for item in (*members, *excluded):
        parse_address(str(item.value), item.location)  # bad CIDRs fail here, with position
    return NetworkDef(
        name=str(key.value),
        members=tuple(str(m.value) for m in members),
        excluded=tuple(str(m.value) for m in excluded),
        description=description,
        location=key.location,
    )


def _service(key: Node, value: Node) -> ServiceDef:
    description = None
    if value.kind == "mapping":
        fields = mapping(value, "a service")
        for name, (knode, _v) in fields.items():
            if name not in ("ports", "port", "description"):
                raise err(
                    f"unknown key {name!r} in service",
                    knode,
                    suggest(name, ["ports", "description"]),
                )
        port_node = fields.get("ports") or fields.get("port")
        if port_node is None:
            raise err("a service needs ports:", value, "e.g. ports: [8080/tcp]")
        items = as_str_list(port_node[1])
        if "description" in fields:
            description = as_str(fields["description"][1])
    else:
        items = as_str_list(value)
    ports: dict[ServicePort, None] = {}  # ordered and de-duplicated in linear time
    for item in items:
        for sp in parse_port_text(str(item.value), item.location):
            ports[sp] = None
    if not ports:
        raise err("a service needs at least one port", value)
    return ServiceDef(str(key.value), tuple(ports), description, key.location)


def _action_field(
    fields: dict[str, tuple[Node, Node]], name: str
) -> tuple[Action | None, SourceLocation | None]:
    if name not in fields:
        return None, None
    node = fields[name][1]
    try:
        return Action(str(node.value)), node.location
    except ValueError:
        raise err(
            f"unknown action {node.value!r}",
            node,
            suggest(str(node.value), [a.value for a in Action]) or "use allow, deny or reject",
        ) from None


def _bool_field(fields: dict[str, tuple[Node, Node]], name: str) -> bool | None:
    return optional_bool(fields[name][1]) if name in fields else None


def _role(key: Node, value: Node, builder: EntryBuilder) -> RoleDef:
    fields = mapping(value, "a role") if value.value is not None else {}
    allowed = ("provides", "denies", "uses", "description")
    for name, (knode, _v) in fields.items():
        if name not in allowed:
            raise err(f"unknown key {name!r} in role", knode, suggest(name, allowed))
    owner = str(key.value)
    provides, denies, uses = builder.entry_lists(owner, fields)
    description = as_str(fields["description"][1]) if "description" in fields else None
    return RoleDef(owner, provides, denies, uses, description, key.location)


def _host(
    key: Node, value: Node, builder: EntryBuilder, roles: dict[str, tuple[Node, Node]]
) -> HostDef:
    fields = mapping(value, "a host") if value.value is not None else {}
    allowed = (*HOST_KEYS, "description")
    for name, (knode, _v) in fields.items():
        if name not in allowed:
            raise err(f"unknown key {name!r} in host", knode, suggest(name, allowed))
    addresses = []
    if "addresses" in fields:
        for item in as_str_list(fields["addresses"][1]):
            net = parse_address(str(item.value), item.location)
            if net is None or net.num_addresses != 1:
                raise err(
                    f"bad host address {item.value!r}", item, "write one IPv4 or IPv6 address"
                )
            addresses.append(net.network_address)
    role_names: list[str] = []
    if "roles" in fields:
        for item in as_str_list(fields["roles"][1]):
            if item.value not in roles:
                raise err(f"unknown role {item.value!r}", item, suggest(str(item.value), roles))
            role_names.append(str(item.value))
    owner = str(key.value)
    provides, denies, uses = builder.entry_lists(owner, fields)
    default, default_location = _action_field(fields, "default")
    return HostDef(
        name=owner,
        addresses=tuple(addresses),
        roles=tuple(role_names),
        provides=provides,
        denies=denies,
        uses=uses,
        default=default,
        default_log=_bool_field(fields, "default_log"),
        description=as_str(fields["description"][1]) if "description" in fields else None,
        location=key.location,
        default_location=default_location,
    )
