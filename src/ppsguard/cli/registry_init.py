"""`pps registry init`: write a draft registry of what is observed (added to the registry group)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.cli.output import note, warn
from ppsguard.errors import UsageError
from ppsguard.report.sanitize import visible

HELP = """Draft a registry from what is observed: every open door, documented as it is.

Sources (combine them): --from-local (the default) reads this machine's listening sockets, or
those of --netns NAME; --from-scan TARGETS scans lab or own addresses (TCP connect, top ports);
--from-nmap FILE reads an nmap XML file. Purposes and owners are marked TODO, the default is
deny. `pps audit` against the draft reports no undocumented door on the same host.
"""


def register(group: typer.Typer) -> None:
    """Add `init` to the `pps registry` group."""

    @group.command("init", help=HELP)
    def init_command(  # noqa: PLR0917 - Typer maps parameters to options
        from_local: Annotated[
            bool, typer.Option("--from-local", help="Use the local listening sockets (default).")
        ] = False,
        netns: Annotated[
            str | None, typer.Option("--netns", help="Read the sockets of this network namespace.")
        ] = None,
        from_scan: Annotated[
            str | None,
            typer.Option(
                "--from-scan",
                help="Scan these targets (comma separated) and document what is open on each.",
            ),
        ] = None,
        from_nmap: Annotated[
            Path | None, typer.Option("--from-nmap", help="Document what an nmap XML file saw.")
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="Name of the host in the draft.")
        ] = None,
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write to FILE (default: stdout).")
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite FILE if it exists.")
        ] = False,
    ) -> None:
        import socket

        from ppsguard.audit import knowledge_service_name
        from ppsguard.audit.init import draft_registry, host_entries
        from ppsguard.audit.views import OutsideView, Vantage, outside_from_scan

        if output is not None and output.exists() and not force:
            raise UsageError(f"{output} exists; use --force to replace it", token=str(output))
        use_local = from_local or netns is not None or (from_scan is None and from_nmap is None)
        hosts = []
        sources = []
        if use_local:
            from ppsguard.audit.observe import host_addresses, local_listeners

            listeners, gaps = local_listeners(netns)
            for gap in gaps:
                warn(gap)
            name = host or netns or socket.gethostname()
            outside: OutsideView | None = None
            if from_nmap is not None:
                from ppsguard.audit.observe import outside_from_nmap

                outside = outside_from_nmap(from_nmap)
                sources.append(f"nmap file {from_nmap.name}")
            entries = host_entries(listeners, outside, knowledge_service_name)
            hosts.append((name, host_addresses(netns), entries))
            sources.insert(0, f"the sockets of {netns or 'this machine'}")
        elif from_nmap is not None:
            from ppsguard.audit.observe import outside_from_nmap

            view = outside_from_nmap(from_nmap)
            for address in view.addresses:
                sub = OutsideView(
                    view.vantage,
                    (address,),
                    view.scanned,
                    tuple(r for r in view.results if r.address == address),
                )
                hosts.append(
                    (
                        host or f"host-{address}",
                        (address,),
                        host_entries((), sub, knowledge_service_name),
                    )
                )
            sources.append(f"nmap file {from_nmap.name}")
        if from_scan is not None:
            import asyncio

            from ppsguard.scan.engine import ScanOptions, scan

            targets = [t.strip() for t in from_scan.split(",") if t.strip()]
            result = asyncio.run(
                scan(targets, None, top=1000, options=ScanOptions(engine="connect", deadline=300))
            )
            view = outside_from_scan(result, Vantage.REMOTE)
            for address in view.addresses:
                sub = OutsideView(
                    view.vantage,
                    (address,),
                    view.scanned,
                    tuple(r for r in view.results if r.address == address),
                )
                name = host if host and len(view.addresses) == 1 else f"host-{address}"
                hosts.append((name, (address,), host_entries((), sub, knowledge_service_name)))
            sources.append(f"a scan of {', '.join(targets)}")
        if not hosts:
            raise UsageError("nothing observed: no host answered", hint="check the targets")
        text = draft_registry(hosts, source=" and ".join(sources), today=dt.date.today())
        doors = sum(len(entries) for _, _, entries in hosts)
        if output is None:
            sys.stdout.write(text)
        else:
            from ppsguard.errors import PpsError
            from ppsguard.files import write_atomic

            try:
                write_atomic(output, text)
            except PpsError:
                sys.stdout.write(text)  # the observation is not lost: the draft goes to stdout
                raise
            note(
                f"wrote {visible(output)}: {len(hosts)} host(s), {doors} documented door(s); "
                f"fill in the TODOs, then `pps audit {visible(output)}`"
            )
