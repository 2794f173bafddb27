"""`pps registry import`: a registry draft from ufw, firewalld, iptables or nftables rules, with
an optional lab proof that the draft treats packets as the original did (added to the group)."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ppsguard.importers.rules import Imported
    from ppsguard.importers.verify import Loader

HELP = """Draft a registry from an existing firewall: ufw, firewalld, iptables or nftables.

Give the rules as FILE(s) (recognised by content, any order) or read them from the running tools
with --live (inside --netns NS if given):

  iptables   iptables-save / ip6tables-save text, plus `ipset save` for -m set matches
  nftables   `nft -j list ruleset` (JSON)
  ufw        `ufw status verbose`, or /etc/ufw/user.rules, user6.rules, /etc/default/ufw
  firewalld  zone XML (+ service XML files), or `firewall-cmd --list-all-zones` text (--zone Z)

The draft (-o REG, written atomically; stdout without -o) has named networks for repeated
address sets, ids from service names, `reference:` naming the rule each entry came from, TODO
purpose/owner, and the original default. What the registry cannot say (NAT, marks, rate limits,
interfaces, ICMP, other chains and tables) is listed in a comment block at the top of the draft
AND in the report on stdout. --verify (root, the lab) loads the original and the compiled draft
into two lab hosts, sends the same probes to both and lists every probe whose fate differs.
Exit 0; 1 when --verify finds a difference no listed rule explains; 2 bad input; 3 runtime.
"""


WORDS = {"accept": "allow", "drop": "deny", "reject": "reject"}


def register(group: typer.Typer) -> None:
    """Add `import` to the `pps registry` group."""

    @group.command("import", help=HELP)
    def import_command(  # noqa: PLR0917 - Typer maps parameters to options
        source: Annotated[
            str, typer.Option("--from", help="ufw, firewalld, iptables or nftables.")
        ],
        files: Annotated[
            list[Path] | None, typer.Argument(help="Rule files (omit with --live).")
        ] = None,
        live: Annotated[bool, typer.Option("--live", help="Ask the running tools.")] = False,
        netns: Annotated[
            str | None, typer.Option("--netns", help="With --live: inside this network namespace.")
        ] = None,
        zone: Annotated[
            str | None, typer.Option("--zone", help="firewalld: the zone (default: the default).")
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Host name in the draft.")] = "imported",
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write the draft to FILE.")
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
        verify: Annotated[
            bool, typer.Option("--verify", help="Prove it in the lab (root): original vs draft.")
        ] = False,
        probes: Annotated[
            int, typer.Option("--probes", min=1, max=5000, help="--verify: at most N probes.")
        ] = 600,
    ) -> None:
        import sys

        from ppsguard.audit.init import host_key
        from ppsguard.errors import UsageError
        from ppsguard.importers.build import import_rules
        from ppsguard.importers.draft import draft_text
        from ppsguard.importers.sources import SOURCES, live_inputs, read_inputs

        if source not in SOURCES:
            raise UsageError(f"unknown --from {source!r}", hint="use " + ", ".join(SOURCES))
        if bool(files) == live:
            raise UsageError("give FILE(s) or --live (one of the two)")
        if netns and not live:
            raise UsageError("--netns goes with --live")
        if output is not None and output.exists() and not force:
            raise UsageError(f"{output} exists; use --force to replace it", token=str(output))
        inputs = live_inputs(source, netns) if live else read_inputs(files or [])
        if source == "firewalld" and not live:
            from ppsguard.importers.sources import firewalld_services

            inputs += firewalld_services(inputs)
        imported = import_rules(source, inputs, zone=zone)
        with contextlib.ExitStack() as stack:
            loader = _loader(source, inputs, zone, stack) if verify else None  # before writing
            text = draft_text(imported, host=host_key(host), today=dt.date.today())
            if output is None:
                sys.stdout.write(text)
            else:
                from ppsguard.files import write_atomic

                write_atomic(output, text)
            _report(source, imported, output)
            if loader is not None:
                _verify(imported, loader, text, str(output or "<draft>"), probes)


def _loader(
    source: str, inputs: list[tuple[str, str]], zone: str | None, stack: contextlib.ExitStack
) -> Loader:
    """How --verify loads the original (a UsageError when it cannot)."""
    import tempfile

    from ppsguard.importers.sources import firewalld_loader, original_loader, ufw_loader

    steps = original_loader(source, inputs)
    if steps:
        return steps
    if source == "ufw":
        return ufw_loader(inputs)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pps-firewalld-"))
    return firewalld_loader(inputs, zone, Path(folder))


def _report(source: str, imported: Imported, output: Path | None) -> None:
    from ppsguard.cli.output import emit_line
    from ppsguard.importers.draft import registry_order

    denies, provides = registry_order(imported)
    emit_line(
        f"imported {len(imported.rules)} {source} rule(s): {len(denies)} deny and "
        f"{len(provides)} allow entries, default {WORDS[imported.default]}"
        + (" (logged)" if imported.default_log else "")
        + (f", written to {output}" if output else "")
    )
    emit_line(f"not expressed: {len(imported.unexpressed)}")
    for item in imported.listed():
        emit_line(f"  {item.origin}: {item.why}")
    if imported.covered:
        emit_line(f"done by the compiled firewall's fixed rules: {len(imported.covered)}")


def _verify(imported: Imported, loader: Loader, text: str, name: str, probes: int) -> None:
    from ppsguard.cli.output import emit_line, note
    from ppsguard.firewall.render import renderer
    from ppsguard.importers.verify import verify as run_verify
    from ppsguard.policy.compile import compile_host_policy
    from ppsguard.registry.load import parse_registry

    policy = compile_host_policy(parse_registry(text, name))
    nft = renderer("nftables").render(policy).files[0].text
    note("verify: building the lab (original, draft, client) and probing both ...")
    report = run_verify(imported, loader, nft, limit=probes)
    differing = report.differing
    emit_line(
        f"verify: {len(report.outcomes)} probes from {len(report.plan.sources)} source(s) in "
        f"{report.seconds:.1f} s: {len(differing)} differ, "
        f"{len(report.unexplained)} not explained by a listed rule"
    )
    for outcome in differing:
        probe = outcome.probe
        why = outcome.explained or "NOT EXPLAINED"
        emit_line(
            f"  {probe.source} -> {probe.port}/{probe.protocol}: original {outcome.original},"
            f" draft {outcome.draft} ({why})"
        )
    for item in report.plan.unprobed:
        emit_line(f"  not probed: {item}")
    if report.unexplained:
        raise typer.Exit(1)
