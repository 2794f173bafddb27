"""The `pps sockets` command: a thin layer over `ppsguard.inventory.collect` (see docs/sockets.md).

Parses options, calls the collector, renders records: a Rich table grouped by exposure on stderr,
or JSON / JSONL / CSV on stdout. Coverage gaps (not root, unreadable namespaces) become warnings.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from ppsguard.cli import output
from ppsguard.cli.storeopt import StoreOption, record
from ppsguard.errors import UsageError
from ppsguard.model.net import Protocol
from ppsguard.model.sockets import (
    ContainerRef,
    Exposure,
    Inventory,
    NetnsInfo,
    Role,
    SocketRecord,
    format_address,
)

CSV_COLUMNS = (
    "protocol",
    "family",
    "state",
    "role",
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "exposure",
    "netns",
    "inode",
    "uid",
    "user",
    "owners",
    "kernel_owned",
    "unit",
    "cgroup",
    "port_range",
    "service",
)
_EXPOSURE_TITLES = {
    Exposure.ANY: "on all interfaces",
    Exposure.SPECIFIC: "on specific addresses",
    Exposure.LOOPBACK: "loopback-only",
}


_HELP = (
    "List open sockets (doors) and connections (windows), and every process holding them.\n\n"
    "Reads the kernel's socket tables over netlink sock_diag (falling back to /proc/net), then "
    "walks /proc/*/fd for the holders. Default: listening sockets, as a table grouped by "
    "exposure (all interfaces, specific addresses, loopback-only) on stderr, with a summary. "
    "Without root it lists every socket, the owners of your own processes, and warns about "
    "what it could not see. See docs/sockets.md for the columns and JSON fields."
)


def record_row(record: SocketRecord) -> dict[str, Any]:
    """One record as a JSON-ready mapping; `owners` is a list of {pid, comm, exe, cmdline, user}."""
    return {
        "protocol": record.protocol.value,
        "family": record.family.value,
        "state": record.state.value,
        "role": record.role.value,
        "local_address": format_address(record.local_address),
        "local_port": record.local_port,
        "remote_address": format_address(record.remote_address),
        "remote_port": record.remote_port,
        "exposure": record.exposure.value,
        "netns": {
            "inode": record.netns.inode,
            "name": record.netns.name,
            "pid": record.netns.pid,
            "container": _container(record.netns.container),
        },
        "inode": record.inode,
        "uid": record.uid,
        "user": record.user,
        "owners": [
            {
                "pid": o.pid,
                "comm": o.comm,
                "exe": o.exe,
                "cmdline": list(o.cmdline),
                "user": o.user,
            }
            for o in record.owners
        ],
        "kernel_owned": record.kernel_owned,
        "unit": record.unit,
        "cgroup": record.cgroup,
        "port_range": record.port_range.value if record.port_range else None,
        "service": record.service,
        "v6only": record.v6only,
    }


def _container(container: ContainerRef | None) -> dict[str, str | None] | None:
    if container is None:
        return None
    return {"runtime": container.runtime, "id": container.id, "name": container.name}


def netns_label(netns: NetnsInfo) -> str:
    """The namespace as the table shows it: `name`, `docker:3f2a1b9c0d4e`, `name (docker:…)`,
    or `net:[INODE]`."""
    if netns.name and netns.container is not None:
        return f"{netns.name} ({netns.container})"
    return str(netns)


def _csv_row(record: SocketRecord) -> dict[str, Any]:
    row = record_row(record)
    row["netns"] = netns_label(record.netns)
    row["owners"] = " ".join(f"{o.comm}[{o.pid}]" for o in record.owners)
    return row


def summary(inventory: Inventory, active_count: int | None, *, doors: bool = True) -> str:
    """ "14 doors open: 9 on all interfaces, 5 loopback-only; 37 active connections"."""
    if not doors:
        count = active_count or 0
        return f"{count} active connection" + ("" if count == 1 else "s")
    passive = inventory.passive
    counts = Counter(r.exposure for r in passive)
    parts = [f"{counts[e]} {title}" for e, title in _EXPOSURE_TITLES.items() if counts[e]]
    door = "door" if len(passive) == 1 else "doors"
    text = f"{len(passive)} {door} open"
    if parts:
        text += ": " + ", ".join(parts)
    if active_count is not None:
        noun = "connection" if active_count == 1 else "connections"
        text += f"; {active_count} active {noun}"
    return text


def _owners_cell(record: SocketRecord, owners_resolved: bool) -> str:
    if record.owners:
        names = Counter(o.comm for o in record.owners)
        shown = [
            f"{comm}[{next(o.pid for o in record.owners if o.comm == comm)}]"
            + (f" ×{n}" if n > 1 else "")
            for comm, n in names.items()
        ]
        return ", ".join(shown)
    if record.kernel_owned:
        return "(kernel)"
    return "?" if owners_resolved else ""


def render_table(inventory: Inventory, *, show_netns: bool) -> None:
    from rich.table import Table

    console = output.human()
    if not console.is_terminal:
        console.width = 160  # a log file or pipe: don't fold addresses at 80 columns
    groups: list[tuple[str, list[SocketRecord]]] = []
    for exposure, title in _EXPOSURE_TITLES.items():
        rows = [r for r in inventory.passive if r.exposure is exposure]
        if rows:
            groups.append((f"Listening {title}", rows))
    if inventory.active:
        groups.append(("Active", list(inventory.active)))
    for title, rows in groups:
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for column in ("proto", "local", "remote", "state"):
            table.add_column(column, no_wrap=True)
        for column in ("process", "user", "service"):
            table.add_column(column, overflow="fold", min_width=8)
        if show_netns:
            table.add_column("netns")
        rows.sort(key=lambda r: (str(r.netns), r.protocol, r.local_port, str(r.local_address)))
        for r in rows:
            local = format_address(r.local_address)
            remote = format_address(r.remote_address)
            if r.family.value == "ipv6":
                local, remote = f"[{local}]", f"[{remote}]"
            cells = [
                f"{r.protocol}{'6' if r.family.value == 'ipv6' else ''}",
                f"{local}:{r.local_port}",
                f"{remote}:{r.remote_port}" if r.role is Role.ACTIVE else "*",
                r.state.value,
                _owners_cell(r, inventory.owners_resolved),
                r.user or str(r.uid),
                r.service or "",
            ]
            if show_netns:
                cells.append(netns_label(r.netns))
            table.add_row(*cells)
        console.print(table)
        console.print()


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("sockets", help=_HELP)
    def sockets(  # noqa: PLR0917 -- a Typer command mirrors its options
        listening: Annotated[
            bool, typer.Option("--listening", help="Passive sockets only (the default).")
        ] = False,
        active: Annotated[
            bool, typer.Option("--active", help="Connections only (not listening).")
        ] = False,
        all_states: Annotated[
            bool, typer.Option("--all", help="Listening and active sockets.")
        ] = False,
        tcp: Annotated[bool, typer.Option("--tcp", help="TCP (default: TCP and UDP).")] = False,
        udp: Annotated[bool, typer.Option("--udp", help="UDP (default: TCP and UDP).")] = False,
        raw: Annotated[bool, typer.Option("--raw", help="Raw IP sockets (best effort).")] = False,
        sctp: Annotated[bool, typer.Option("--sctp", help="SCTP sockets (best effort).")] = False,
        port: Annotated[
            int | None,
            typer.Option("--port", help="Only this local port (or remote port of connections)."),
        ] = None,
        process: Annotated[
            str | None,
            typer.Option("--process", help="Only sockets held by this command name (comm/exe)."),
        ] = None,
        netns: Annotated[
            str | None,
            typer.Option(
                "--netns",
                help="One namespace: /run/netns name, net:[INODE], pid:PID or a container "
                "label as the netns column shows it (docker:3f2a1b9c0d4e).",
            ),
        ] = None,
        all_netns: Annotated[
            bool, typer.Option("--all-netns", help="Every network namespace on the host.")
        ] = False,
        no_owners: Annotated[
            bool, typer.Option("--no-owners", help="Skip the (costly) /proc/*/fd owner walk.")
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
        jsonl_out: Annotated[
            bool, typer.Option("--jsonl", help="One JSON record per line on stdout.")
        ] = False,
        csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
        store: StoreOption = None,
    ) -> None:
        """List open sockets and the processes holding them (help text: _HELP)."""
        from ppsguard.inventory import collect

        if sum((listening, active, all_states)) > 1:
            raise UsageError("choose one of --listening, --active, --all")
        if sum((json_out, jsonl_out, csv_out)) > 1:
            raise UsageError("choose one of --json, --jsonl, --csv")
        if netns is not None and all_netns:
            raise UsageError("--netns and --all-netns exclude each other")
        if port is not None and not 0 <= port <= 65535:
            raise UsageError("port out of range 0-65535", token=str(port))
        protocols = [
            p
            for p, on in (
                (Protocol.TCP, tcp),
                (Protocol.UDP, udp),
                (Protocol.RAW, raw),
                (Protocol.SCTP, sctp),
            )
            if on
        ] or [Protocol.TCP, Protocol.UDP]
        want_listening = not active
        want_active = active or all_states
        inventory = collect(
            listening=want_listening,
            active=want_active,
            protocols=protocols,
            port=port,
            process=process,
            netns=netns,
            all_netns=all_netns,
            owners=not no_owners,
        )
        for gap in inventory.gaps:
            output.warn(gap)
        records = sorted(
            inventory.records,
            key=lambda r: (r.netns.inode, r.protocol, r.family, r.local_port, r.key),
        )
        if json_out:
            output.emit_json([record_row(r) for r in records])
        elif jsonl_out:
            output.emit_jsonl(record_row(r) for r in records)
        elif csv_out:
            output.emit_csv((_csv_row(r) for r in records), CSV_COLUMNS)
        else:
            active_count: int | None = len(inventory.active) if want_active else None
            if active_count is None and port is None and process is None:
                active_count = len(
                    collect(
                        listening=False,
                        active=True,
                        protocols=protocols,
                        netns=netns,
                        all_netns=all_netns,
                        owners=False,
                    ).records
                )
            render_table(inventory, show_netns=all_netns)
            output.human().print(summary(inventory, active_count, doors=want_listening))
        record(store, "sockets", [record_row(r) for r in records], netns=netns)
