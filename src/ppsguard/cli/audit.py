"""The `pps audit` command: hold what runs, what is reachable and what is enforced against the
registry; print findings, write reports (JSON, Markdown, HTML building, FedRAMP-style CSV)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ppsguard.cli.output import emit_json, note, results, stdout_is_terminal
from ppsguard.cli.storeopt import StoreOption, record, store_url
from ppsguard.errors import PpsError, RuntimeFailure, UsageError
from ppsguard.model.findings import AuditReport, Severity

if TYPE_CHECKING:
    from ppsguard.audit.baseline import Baseline

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
Exit codes: 0 clean, 1 findings at or above --fail-on (default medium), 2 bad input,
3 runtime failure (permission, a missing tool, a store that cannot record). See docs/audit.md.
"""


def write_atomic(path: Path, text: str) -> None:
    """Through the one atomic writer (`ppsguard.files`): exit 2 for a missing folder, 3 for
    permission or a full disk, and the previous file kept either way."""
    from ppsguard.files import write_atomic as write

    write(path, text)


def report_document(report: AuditReport, fail_on: Severity) -> dict[str, Any]:
    """The `--json` document: `ppsguard.report.audit_document` (schema `ppsguard.audit`)."""
    from ppsguard.report.audit_document import audit_document

    return audit_document(report, fail_on)


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
        from ppsguard.cli.files import raise_first

        failures = _write_reports(report, baseline, markdown, html_file, csv_file)
        if json_out:
            from ppsguard.report.streams import Streamed

            document = report_document(report, threshold)
            document["findings"] = Streamed(document["findings"])
            document["doors"] = Streamed(document["doors"])
            emit_json(document)
        else:
            from ppsguard.report.console import print_report

            print_report(report, results(), fancy=stdout_is_terminal())
        raise_first(failures)  # after the findings: a report that fails never hides them
        if new_note:
            note(new_note)
        if store_error is not None:
            raise store_error
        used = registry or (Path(full.registry) if full.registry else None)
        if store_url(store) is not None:
            record(store, "audit", report_document(full, threshold), netns=netns, registry=used)
        if report.failing(threshold):
            raise typer.Exit(1)


def _write_reports(
    report: AuditReport,
    baseline: Baseline,
    markdown: Path | None,
    html_file: Path | None,
    csv_file: Path | None,
) -> list[PpsError]:
    """The report files; the failures are raised by the caller once the findings are printed."""
    from ppsguard.cli.files import write_outputs

    def md() -> str:
        from ppsguard.report.markdown import render_markdown

        return render_markdown(report)

    def html() -> str:
        from ppsguard.report.html import render_html

        return render_html(report)

    def csv() -> str:
        from ppsguard.report.csvdoc import render_csv

        return render_csv(report, baseline)

    return write_outputs([(markdown, md), (html_file, html), (csv_file, csv)])
