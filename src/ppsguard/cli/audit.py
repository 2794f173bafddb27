"""The `pps audit` command: hold what runs, what is reachable and what is enforced against the
registry; print findings, write reports (JSON, Markdown, HTML building, FedRAMP-style CSV)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ppsguard.cli.output import emit_json, note, results, stdout_is_terminal
from ppsguard.cli.storeopt import StoreOption, record, store_url
from ppsguard.errors import InputError, RuntimeFailure, UsageError
from ppsguard.model.findings import AuditReport, Severity

HELP = """Audit this machine (or a network namespace) against the PPS registry.

Observes the listening sockets, the outside view (a TCP scan of the host's own non-loopback
addresses, or an imported nmap XML file) and the live firewall, then reports every difference
as a typed finding with evidence and a remedy: unregistered-listener, missing-service,
exposure-widened, owner-changed, reachable-undocumented, listening-but-blocked,
firewall-not-enforcing, risky-service, protocol-mismatch, waiver-expired. Without a registry
everything is undocumented and `pps registry init` drafts one.

The report goes to stdout (plain columns when piped, `--json` streamed); `wrote FILE` notes
and warnings go to stderr. Finding ids never use pids, so restarting services creates no new
finding. --store records the run (docs/store.md); --new-only shows only the findings that the
host's last recorded audit did not have (the whole audit is still recorded).
Exit codes: 0 clean, 1 findings at or above --fail-on (default medium), 2 bad input.
"""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, then rename."""
    folder = path.parent if str(path.parent) else Path()
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None


def report_document(report: AuditReport, fail_on: Severity) -> dict[str, Any]:
    """The `--json` document."""
    from ppsguard.report.jsonout import to_jsonable

    findings = [
        {
            "id": f.id,
            "type": f.type.value,
            "severity": f.severity.value,
            "title": f.title,
            "protocol": f.protocol.value if f.protocol else None,
            "port": f.port,
            "address": f.address,
            "family": f.family.value if f.family else None,
            "process": f.process,
            "pids": list(f.pids),
            "entry": f.entry,
            "entry_location": f.entry_location,
            "evidence": list(f.evidence),
            "remedy": {
                "summary": f.remedy.summary,
                "commands": list(f.remedy.commands),
                "registry_yaml": f.remedy.registry_yaml,
            },
        }
        for f in report.findings
    ]
    return {
        "host": report.host,
        "observed_at": report.observed_at.isoformat(timespec="seconds"),
        "registry": report.registry,
        "findings": findings,
        "doors": to_jsonable(report.doors),
        "summary": {
            "findings": len(report.findings),
            "by_severity": report.counts(),
            "by_type": report.by_type(),
            "open_doors": len(report.doors),
            "fail_on": fail_on.value,
            "failing": len(report.failing(fail_on)),
            "views": report.views,
            "gaps": list(report.gaps),
            "draft_hint": report.draft_hint,
        },
    }


def register(app: typer.Typer) -> None:
    """Add `pps audit` to `app`."""

    @app.command("audit", help=HELP)
    def audit_command(  # noqa: PLR0917 - Typer maps parameters to options
        registry: Annotated[
            Path | None,
            typer.Argument(help="The registry YAML file; omit to audit with no registry."),
        ] = None,
        host: Annotated[
            str | None,
            typer.Option("--host", help="Host name or address in the registry (omit if one host)."),
        ] = None,
        netns: Annotated[
            str | None,
            typer.Option(
                "--netns", help="Audit this network namespace (a container, a lab host) instead."
            ),
        ] = None,
        scan: Annotated[
            bool | None,
            typer.Option(
                "--scan/--no-scan",
                help="Scan the host's own non-loopback addresses (default: on with --netns or "
                "--scan-from, off for this machine, where a self-scan passes `iif lo`).",
            ),
        ] = None,
        scan_from: Annotated[
            str | None,
            typer.Option(
                "--scan-from",
                help="Scan from inside this other network namespace (a real outside view).",
            ),
        ] = None,
        scope: Annotated[
            Path | None,
            typer.Option(
                "--scope",
                help="Allow-list FILE of CIDRs (as for pps scan): the outside view scans only "
                "the host's addresses inside it and names the others as a gap.",
            ),
        ] = None,
        identify: Annotated[
            bool,
            typer.Option(
                "--identify/--no-identify",
                help="Identify the service behind each port the scan finds open (banners, "
                "handshakes; non-intrusive) to catch protocol mismatches.",
            ),
        ] = True,
        from_nmap: Annotated[
            Path | None,
            typer.Option("--from-nmap", help="Use this nmap XML file (-oX) as the outside view."),
        ] = None,
        fail_on: Annotated[
            str,
            typer.Option(
                "--fail-on",
                help="Exit 1 on findings at or above: info, low, medium, high, critical.",
            ),
        ] = "medium",
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        markdown: Annotated[
            Path | None, typer.Option("--markdown", help="Write a Markdown report to FILE.")
        ] = None,
        html_file: Annotated[
            Path | None,
            typer.Option("--html", help="Write the self-contained HTML report (the building)."),
        ] = None,
        csv_file: Annotated[
            Path | None,
            typer.Option("--csv", help="Write the PPS table (FedRAMP SSP 10-4 columns) as CSV."),
        ] = None,
        store: StoreOption = None,
        new_only: Annotated[
            bool,
            typer.Option(
                "--new-only",
                help="Only findings not present in the last recorded audit of this host "
                "(needs --store or PPSGUARD_STORE).",
            ),
        ] = False,
    ) -> None:
        from ppsguard.audit import audit_machine

        try:
            threshold = Severity(fail_on.lower())
        except ValueError:
            raise UsageError(
                "unknown severity for --fail-on",
                token=fail_on,
                hint="one of: " + ", ".join(s.value for s in Severity),
            ) from None
        if from_nmap is not None and scan:
            raise UsageError("give either --scan or --from-nmap, not both")
        url = store_url(store)
        if new_only and url is None:
            raise UsageError("--new-only needs a store: --store [URL] or PPSGUARD_STORE")
        do_scan = scan if scan is not None else bool(netns or scan_from)
        from ppsguard.scan.plan import load_scope_file

        run = audit_machine(
            registry,
            host=host,
            netns=netns,
            scan=do_scan,
            scan_from=scan_from,
            nmap_file=from_nmap,
            identify=identify,
            scope=None if scope is None else load_scope_file(scope),
        )
        full, baseline = run.report, run.baseline
        report, store_error, new_note = full, None, ""
        if new_only and url is not None:
            from ppsguard.store.identity import this_host
            from ppsguard.store.read import last_audit_keys

            try:
                seen = last_audit_keys(url, this_host(netns))
            except RuntimeFailure as exc:  # show everything, then fail: the result comes first
                seen, store_error = None, exc
            if seen is not None:
                report = dataclasses.replace(
                    full, findings=tuple(f for f in full.findings if f.id not in seen)
                )
            if store_error is None:
                new_note = (
                    f"--new-only: {len(report.findings)} of {len(full.findings)} findings are new "
                    "since the last recorded audit of this host"
                    if seen is not None
                    else "--new-only: no recorded audit of this host yet, every finding is new"
                )
        if markdown is not None:
            from ppsguard.report.markdown import render_markdown

            write_atomic(markdown, render_markdown(report))
        if html_file is not None:
            from ppsguard.report.html import render_html

            write_atomic(html_file, render_html(report))
        if csv_file is not None:
            from ppsguard.report.csvdoc import render_csv

            write_atomic(csv_file, render_csv(report, baseline))
        if json_out:
            from ppsguard.report.streams import Streamed

            document = report_document(report, threshold)
            document["findings"] = Streamed(document["findings"])
            document["doors"] = Streamed(document["doors"])
            emit_json(document)
        else:
            from ppsguard.report.console import print_report

            print_report(report, results(), fancy=stdout_is_terminal())
        for written in (markdown, html_file, csv_file):
            if written is not None:
                note(f"wrote {written}")
        if new_note:
            note(new_note)
        if store_error is not None:
            raise store_error
        used = registry or (Path(full.registry) if full.registry else None)
        if store_url(store) is not None:
            record(store, "audit", report_document(full, threshold), netns=netns, registry=used)
        if report.failing(threshold):
            raise typer.Exit(1)
