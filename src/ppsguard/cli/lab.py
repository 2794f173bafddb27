"""`pps lab up/down/status/clean`: a practice lab of network-namespace hosts on this machine.

The lab's hosts live in network namespaces joined by a bridge, addressed from 198.18.0.0/24 and
2001:db8::/64 only, so anything you scan or firewall there stays inside this machine.
"""

from __future__ import annotations

import json
import subprocess
from typing import Annotated

import typer

from ppsguard.cli import output
from ppsguard.digits import decimal
from ppsguard.errors import KernelFeatureMissing, UsageError
from ppsguard.lab import hosts as labmod

DEMO_TCP_PORTS = (21, 25, 80, 110, 1337, 3306)
DEMO_UDP_PORTS = (53,)


def _require_lab() -> None:
    reason = labmod.lab_unavailable_reason()
    if reason:
        raise KernelFeatureMissing(reason)


def _host_addresses(netns: str) -> list[str]:
    result = subprocess.run(
        ["ip", "-n", netns, "-j", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return []
    addresses = []
    for link in json.loads(result.stdout or "[]"):
        addresses += [info["local"] for info in link.get("addr_info", [])]
    return addresses


def register(app: typer.Typer) -> None:
    """Add the `lab` group to `app`."""
    group = typer.Typer(
        help=(
            "A practice lab: hosts made of network namespaces on this machine (root needed). "
            "Addresses come only from 198.18.0.0/24 and 2001:db8::/64."
        ),
        no_args_is_help=True,
    )

    @group.command("up")
    def up(
        hosts: Annotated[
            str, typer.Option("--hosts", help="Comma-separated host names.")
        ] = "scanner,target",
        demo: Annotated[
            bool,
            typer.Option(
                "--demo/--no-demo",
                help="Start listeners on the last host (tcp 21,25,80,110,1337,3306; udp 53).",
            ),
        ] = True,
    ) -> None:
        """Create a lab that stays until `pps lab down`, and print how to use it."""
        _require_lab()
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        if not names:
            raise UsageError("no host names given", token=hosts)
        lab = labmod.Lab(names, owner=labmod.PERSISTENT_OWNER).start()
        if demo:
            target = lab[names[-1]]
            for port in DEMO_TCP_PORTS:
                target.listen(port)
            for port in DEMO_UDP_PORTS:
                target.listen(port, protocol="udp")
        output.emit_line(f"lab {lab.lab_id} is up:")
        for host in lab.hosts.values():
            output.emit_line(
                f"  {host.name:<10} {host.ipv4!s:<14} {host.ipv6!s:<16} netns {host.netns}"
            )
        first, last = lab[names[0]], lab[names[-1]]
        output.emit_line(
            f"\ntry:  ip netns exec {first.netns} pps scan {last.ipv4} -p 1-2000\n"
            f"      ip netns exec {last.netns} pps sockets\n"
            f"then: pps lab down {lab.lab_id}"
        )

    @group.command("down")
    def down(
        lab_id: Annotated[
            str | None, typer.Argument(help="The lab to remove (default: every `lab up` lab).")
        ] = None,
    ) -> None:
        """Remove labs made by `pps lab up`, with every process inside them."""
        _require_lab()
        labs = labmod.persistent_labs()
        if lab_id is not None and lab_id not in labs:
            raise UsageError("no such lab", token=lab_id, hint=f"labs: {', '.join(labs) or 'none'}")
        for key, names in labs.items():
            if lab_id in (None, key):
                for name in names:
                    labmod.delete_namespace(name)
                output.emit_line(f"lab {key} removed ({len(names)} namespaces)")

    @group.command("status")
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """List every lab namespace on this machine with its addresses and owner."""
        rows: list[dict[str, object]] = []
        for name in labmod.list_lab_namespaces():
            parts = name.split("-", 3)
            rows.append(
                {
                    "netns": name,
                    "owner": decimal(parts[1]),
                    "lab": parts[2] if len(parts) > 2 else None,
                    "host": parts[3] if len(parts) > 3 else None,
                    "addresses": _host_addresses(name),
                }
            )
        if as_json:
            output.emit_json(rows)
            return
        if not rows:
            output.emit_line("no lab namespaces")
        for row in rows:
            owner = "persistent" if row["owner"] == 0 else f"pid {row['owner']}"
            addrs = " ".join(str(a) for a in row["addresses"]) or "-"  # type: ignore[attr-defined]
            output.emit_line(f"{row['netns']!s:<40} {owner:<12} {addrs}")

    @group.command("clean")
    def clean(
        everything: Annotated[
            bool,
            typer.Option("--all", help="Also labs whose owner still runs (tests in progress)."),
        ] = False,
    ) -> None:
        """Remove leftover lab namespaces whose owner process has died (after a crash)."""
        _require_lab()
        removed = labmod.clean_leftovers(include_live=everything)
        output.emit_line(f"removed {len(removed)} lab namespaces")
        for name in removed:
            output.emit_line(f"  {name}")

    app.add_typer(group, name="lab")
