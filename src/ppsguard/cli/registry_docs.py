"""`pps registry schema | validate | show`: the registry's JSON Schema, validation, resolved rules.

Thin: the loader (ppsguard.registry.load) and compiler (ppsguard.policy.compile) do the work.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

RegistryArg = Annotated[
    Path, typer.Argument(help="The registry YAML file (includes are resolved next to it).")
]


def register(group: typer.Typer) -> None:
    """Add `schema`, `validate` and `show` to the `registry` group."""

    @group.command("schema")
    def schema_command() -> None:
        """Print the registry's JSON Schema (for editors: yaml-language-server, VS Code, ...)."""
        from ppsguard.registry.schema import schema_text

        sys.stdout.write(schema_text())
        sys.stdout.flush()

    @group.command("validate")
    def validate_command(
        registry: RegistryArg,
        json_out: Annotated[
            bool, typer.Option("--json", help="Summary as JSON on stdout.")
        ] = False,
    ) -> None:
        """Load and check a registry; exit 0 when valid, 2 with file:line:column when not.

        Semantic analysis (shadowed entries, risks, waivers) is `pps policy lint`.
        """
        from ppsguard.cli.output import emit_json, emit_line
        from ppsguard.registry.load import load_registry

        reg = load_registry(registry)
        summary = {
            "valid": True,
            "files": list(reg.files),
            "hosts": [h.name for h in reg.hosts],
            "roles": [r.name for r in reg.roles],
            "networks": len(reg.networks),
            "services": len(reg.services),
            "entries": len(reg.entries()),
        }
        if json_out:
            emit_json(summary)
            return
        emit_line(
            f"valid: {len(reg.hosts)} hosts, {len(reg.roles)} roles, {len(reg.entries())} "
            f"entries, {len(reg.networks)} networks, {len(reg.services)} services "
            f"({len(reg.files)} files)"
        )

    @group.command("show")
    def show_command(
        registry: RegistryArg,
        host: Annotated[
            str | None,
            typer.Option("--host", "-H", help="Host name or address (optional with one host)."),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="HostPolicy as JSON.")] = False,
    ) -> None:
        """Show a host's resolved rules in evaluation order (first match wins), then the default.

        On stdout: a table (Rich on a terminal when small; plain aligned columns when piped or
        big), one row per rule and a last row for the default; `--json` streams the HostPolicy.
        """
        from ppsguard.cli.output import emit_json, emit_table
        from ppsguard.policy.compile import compile_host_policy
        from ppsguard.registry.load import load_registry
        from ppsguard.report.streams import Streamed

        policy = compile_host_policy(load_registry(registry), host)
        if json_out:
            from ppsguard.report.jsonout import to_jsonable

            head = to_jsonable(dataclasses.replace(policy, rules=()))
            head["rules"] = Streamed(policy.rules)
            emit_json(head, plain=False)
            return

        def rows() -> Iterator[tuple[str, ...]]:
            for i, rule in enumerate(policy.rules, 1):
                yield (
                    str(i),
                    rule.entry_id,
                    str(rule.action),
                    "yes" if rule.log else "",
                    str(rule.protocol),
                    ",".join(str(p) for p in rule.ports),
                    "anywhere" if rule.source_is_any else _nets(rule.sources),
                    "" if rule.destination_is_any else _nets(rule.destinations),
                    f"{rule.location.file}:{rule.location.line}",
                )
            yield (
                "",
                "default",
                str(policy.default_action),
                "yes" if policy.default_log else "",
                *[""] * 5,
            )

        emit_table(
            ("#", "entry", "action", "log", "proto", "ports", "from", "to", "at"),
            rows,
            count=len(policy.rules) + 1,
            title=f"host {policy.host}: first match wins",
        )


def _nets(nets: tuple[object, ...]) -> str:
    shown = ",".join(str(n) for n in nets[:4])  # no spaces: one awk field
    return shown + (f",(+{len(nets) - 4})" if len(nets) > 4 else "") if nets else "(nothing)"
