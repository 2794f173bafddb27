"""`pps policy explain` and `pps policy lint`: verdicts and rule-set analysis from a registry.

Thin: parse options, load the registry (ppsguard.registry.load), call the pure core
(policy.evaluate, policy.lint), render. Today's date for waiver checks is read here, at the edge.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ppsguard.errors import UsageError
from ppsguard.policy.evaluate import attempt_address

RegistryArg = Annotated[
    Path, typer.Argument(help="The registry YAML file (includes are resolved next to it).")
]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host", "-H", help="Host name or address; may be omitted when the registry has one host."
    ),
]


def register(group: typer.Typer) -> None:
    """Add `explain` and `lint` to the `policy` group."""

    @group.command("explain")
    def explain_command(  # noqa: PLR0917 - Typer maps parameters to options
        registry: RegistryArg,
        source: Annotated[
            str, typer.Option("--from", help="Source address of the connection attempt.")
        ],
        to_port: Annotated[
            str, typer.Option("--to-port", help="Destination port and protocol, e.g. 110/tcp.")
        ],
        host: HostOpt = None,
        to: Annotated[
            str | None,
            typer.Option(
                "--to",
                help="Destination address (checks bind-specific entries; without it a bind is "
                "assumed, and the answer says so: unchecked).",
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    ) -> None:
        """Would this connection attempt be allowed, is it logged, and which entry decides?

        On stdout: the verdict line (ALLOW or DENY, logged or not, the deciding entry and its
        file:line), then the reason. The answer names what it could not check (an entry's bind,
        without --to). The meaning of every rule is in docs/registry.md, section Semantics.

        Example: pps policy explain examples/seed-building.yaml --from 198.18.0.11 --to-port 110/tcp
        """
        from ppsguard.cli.output import emit_json, results, styled
        from ppsguard.policy.compile import compile_host_policy
        from ppsguard.policy.evaluate import explain
        from ppsguard.registry.load import load_registry
        from ppsguard.registry.naming import parse_port_text
        from ppsguard.report.sanitize import visible

        src = attempt_address(source, "--from")
        dst = attempt_address(to, "--to") if to is not None else None
        if dst is not None and dst.version != src.version:
            raise UsageError("--from and --to must be of the same address family", token=to)
        from ppsguard.model.registry import SourceLocation

        try:
            ports = parse_port_text(to_port, SourceLocation("--to-port", 1, 1))
        except ValueError as exc:
            raise UsageError(f"--to-port: {getattr(exc, 'message', exc)}", token=to_port) from None
        if len(ports) != 1 or len(ports[0].ports) != 1:
            raise UsageError(
                "--to-port needs one port and one protocol, e.g. 110/tcp", token=to_port
            )
        reg = load_registry(registry)
        policy = compile_host_policy(reg, host)
        result = explain(
            reg,
            policy,
            source=src,
            port=ports[0].ports.first,
            protocol=ports[0].protocol,
            destination=dst,
        )
        if json_out:
            from ppsguard.report.policy_documents import explain_document

            emit_json(explain_document(result))
            return
        colour = "green" if result.verdict == "allow" else "red"
        line = styled(f"bold {colour}", result.verdict.upper())
        line.append_text(
            styled("yellow", " (logged)") if result.log else styled("", " (not logged)")
        )
        line.append(
            visible(f"  entry {result.entry.id} at {result.entry.file}:{result.entry.line}")
        )
        console = results()
        console.print(line)
        console.print(visible(result.reason, keep_newlines=True))

    @group.command(
        "lint",
        short_help="Check a registry: contradictions, shadowed or risky entries, waivers.",
    )
    def lint_command(
        registry: RegistryArg,
        json_out: Annotated[
            bool, typer.Option("--json", help="Findings as JSON on stdout.")
        ] = False,
        soon_days: Annotated[
            int, typer.Option("--soon-days", help="Warn about waivers expiring within N days.")
        ] = 30,
    ) -> None:
        """Check a registry: unknown names, contradictions, shadowed/redundant/correlated entries,
        risky exposures, waivers, missing purpose or owner. Exit 1 on any error-level finding.

        On stdout: one line per finding (level, file:line:column, code, message), then a count.
        """
        from ppsguard.cli.output import emit_json, results, styled
        from ppsguard.policy.lint import FindingLevel, lint_registry
        from ppsguard.registry.load import load_registry
        from ppsguard.report.sanitize import visible

        reg = load_registry(registry)
        findings = lint_registry(reg, today=dt.date.today(), soon_days=soon_days)
        if json_out:
            from ppsguard.report.policy_documents import lint_document

            emit_json(lint_document(findings))
        else:
            console = results()
            colours = {"error": "red", "warning": "yellow", "info": "cyan"}
            for f in findings:
                line = styled(colours[f.level.value], f"{f.level.value:7}")
                line.append(visible(f" {f.location}: "))
                line.append_text(styled("bold", f.code))
                line.append(" " + visible(f.message))
                console.print(line)
                if f.example is not None:
                    console.print(visible(f"        e.g. {f.example}"))
            errors = sum(f.level is FindingLevel.ERROR for f in findings)
            noun = "finding" if len(findings) == 1 else "findings"
            console.print(f"{len(findings)} {noun}, {errors} at error level")
        if any(f.level is FindingLevel.ERROR for f in findings):
            raise typer.Exit(1)
