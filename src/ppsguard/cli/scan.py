"""The `pps scan` command: a thin layer over `ppsguard.scan.scan()` — options, progress, output."""

from __future__ import annotations

import dataclasses
import functools
import io
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from ppsguard.cli import output
from ppsguard.cli.scan_render import (
    Builders,
    ProgressObserver,
    json_document,
    render_plan,
    render_table,
)
from ppsguard.cli.storeopt import StoreOption, record, store_url
from ppsguard.errors import PpsError, UsageError
from ppsguard.model.scan import HostResult, PortResult, ScanResult
from ppsguard.report.streams import write_json

if TYPE_CHECKING:
    from ppsguard.scan.engine import ScanOptions
    from ppsguard.scan.engines.base import UdpAnswers
    from ppsguard.scan.scope import ScopeGate

HELP = (
    "Scan TCP/UDP ports of hosts and networks (lab, loopback, or what you may scan).\n\n"
    "TARGETS: addresses, CIDRs, ranges (198.18.0.1-20), hostnames. Engines: --syn (root, "
    "default as root), --connect (unprivileged, default otherwise), --udp. Every open port "
    "is re-probed before it "
    "is reported. Host discovery comes first (ARP/ND on a local link, ICMP and TCP elsewhere; "
    "-Pn skips it, -sn stops after it); hosts that are up are listed, the others counted "
    "(--all-hosts lists them). Every path that sends packets (our engines, --nmap, -sV) "
    "passes one scope gate: --scope, --exclude, -T, --max-rate and --dry-run hold for all of "
    "them. The result goes to stdout: a table per host (plain columns when piped), or "
    "--json / --jsonl, or -oX - / -oG -; the progress bar and the seed go to stderr. "
    "See docs/scan.md."
)

_SERVICE_HELP = (
    "Identify services on open ports; silent (open|filtered) UDP ports are asked too and an "
    "answer makes one open."
)
_INTRUSIVE_HELP = (
    "Allow probes that try a credential or may disturb services (SNMP community 'public'), "
    "in UDP discovery and in -sV alike."
)


MAX_LIST_BYTES = 16 * 1024 * 1024  # scope, exclude and target lists


def _read(path: Path, what: str, limit: int = MAX_LIST_BYTES) -> str:
    from ppsguard.infile import read_text

    return read_text(path, limit=limit, what=what)


def _write_atomic(path: Path, write: Callable[[IO[str]], object]) -> None:
    """Write through `write(stream)` with the one atomic writer (`ppsguard.files.atomic_file`: a
    temporary file beside `path`, synced, renamed; the previous file kept on failure); `-` is
    stdout (`-oX -`, as nmap takes it)."""
    if str(path) == "-":
        sys.stdout.flush()
        write(sys.stdout)
        return
    import io

    from ppsguard.files import atomic_file

    with atomic_file(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8")
        write(text)
        text.flush()
        text.detach()  # atomic_file syncs and closes the file itself


def _port_json(p: PortResult) -> dict[str, Any]:
    from ppsguard.report.scan_document import port_document

    return port_document(p)


def host_json(h: HostResult) -> dict[str, Any]:
    """One host of the `ppsguard.scan` document (`report.scan_document.host_document`)."""
    from ppsguard.report.scan_document import host_document

    return host_document(h)


def result_json(r: ScanResult) -> dict[str, Any]:
    """The `ppsguard.scan` document (`report.scan_document.scan_document`)."""
    from ppsguard.report.scan_document import scan_document

    return scan_document(r)


def compact_json(r: ScanResult) -> str:
    """`json.dumps(result_json(r), ensure_ascii=False, separators=(",", ":"))`, through the
    streaming writer the command uses (`scan_render.json_document`: templated ports)."""
    buffer = io.BytesIO()
    write_json(buffer, json_document(r, _builders()), plain=True)
    return buffer.getvalue()[:-1].decode("utf-8")


def _builders() -> Builders:
    return Builders(port=_port_json, host=host_json, result=result_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("scan", help=HELP)
    def scan_command(  # noqa: PLR0917 - one parameter per command-line option
        targets: Annotated[
            list[str] | None,
            typer.Argument(help="Addresses, CIDRs, ranges, hostnames.", show_default=False),
        ] = None,
        ports: Annotated[
            str | None,
            typer.Option(
                "-p", "--ports", help="Ports: 22,80,1000-2000; '-' = 1-65535; T:/U: prefixes."
            ),
        ] = None,
        top_ports: Annotated[
            int | None,
            typer.Option("--top-ports", help="The N most common ports (our own ranked list)."),
        ] = None,
        connect: Annotated[
            bool, typer.Option("--connect", "-sT", help="TCP connect scan (unprivileged).")
        ] = False,
        syn: Annotated[
            bool, typer.Option("--syn", "-sS", help="TCP SYN scan (root; raw sockets).")
        ] = False,
        udp: Annotated[
            bool, typer.Option("--udp", "-sU", help="UDP scan with protocol payloads.")
        ] = False,
        timing: Annotated[
            int,
            typer.Option("-T", "--timing", min=0, max=5, help="Timing preset 0-5 (docs/scan.md)."),
        ] = 3,
        max_retries: Annotated[
            int | None,
            typer.Option("--max-retries", min=0, max=20, help="Retransmissions per probe."),
        ] = None,
        min_rate: Annotated[
            float | None, typer.Option("--min-rate", min=1, help="Packets/s floor (informational).")
        ] = None,
        max_rate: Annotated[
            float | None,
            typer.Option(
                "--max-rate",
                min=1,
                help="Packets/s ceiling (default: the -T preset's; 5,000 for non-local "
                "targets). Also paces -sV connections and is passed to --nmap.",
            ),
        ] = None,
        window: Annotated[
            int | None, typer.Option("--window", min=1, help="Max probes in flight.")
        ] = None,
        seed: Annotated[
            int | None, typer.Option("--seed", min=0, help="Repeat a run's probe order.")
        ] = None,
        exclude: Annotated[
            str | None, typer.Option("--exclude", help="Comma-separated addresses/CIDRs to skip.")
        ] = None,
        input_list: Annotated[
            Path | None, typer.Option("-iL", "--input-list", help="Read targets from FILE.")
        ] = None,
        scope: Annotated[
            Path | None,
            typer.Option(
                "--scope",
                help="Allow-list FILE of CIDRs: a target outside it (anywhere in a range, or "
                "a name's address) refuses the whole scan, exit 2.",
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Print whom the scope gate admits, what would be sent and how fast (and the "
                "nmap command with --nmap); send nothing.",
            ),
        ] = False,
        no_ping: Annotated[
            bool, typer.Option("-Pn", "--no-ping", help="Skip host discovery.")
        ] = False,
        discovery: Annotated[
            str,
            typer.Option(
                "--discovery",
                help="Host discovery methods: auto (ARP/ND on a local link, ICMP and TCP "
                "elsewhere) or a comma list of arp, nd, icmp, tcp.",
            ),
        ] = "auto",
        ping_only: Annotated[
            bool, typer.Option("-sn", "--ping-only", help="Host discovery only, no port scan.")
        ] = False,
        all_hosts: Annotated[
            bool, typer.Option("--all-hosts", help="List down hosts too (JSON always does).")
        ] = False,
        no_confirm: Annotated[
            bool, typer.Option("--no-confirm", help="Skip the re-probe of open ports.")
        ] = False,
        host_timeout: Annotated[
            float | None, typer.Option("--host-timeout", min=0.1, help="Seconds per host.")
        ] = None,
        deadline: Annotated[
            float | None, typer.Option("--deadline", min=0.1, help="Seconds for the whole scan.")
        ] = None,
        all_states: Annotated[
            bool, typer.Option("--all-states", help="List closed/filtered ports too.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="JSON document on stdout.")] = False,
        as_jsonl: Annotated[
            bool, typer.Option("--jsonl", help="One JSON line per port result, streamed.")
        ] = False,
        out_xml: Annotated[
            Path | None,
            typer.Option("-oX", help="Write nmap-compatible XML to FILE (- for stdout)."),
        ] = None,
        out_grep: Annotated[
            Path | None, typer.Option("-oG", help="Write grepable output to FILE (- for stdout).")
        ] = None,
        service: Annotated[bool, typer.Option("--service", "-sV", help=_SERVICE_HELP)] = False,
        service_timeout: Annotated[
            float, typer.Option("--service-timeout", min=0.1, help="Seconds per service probe.")
        ] = 2.0,
        intrusive: Annotated[bool, typer.Option("--intrusive", help=_INTRUSIVE_HELP)] = False,
        from_nmap: Annotated[
            Path | None,
            typer.Option("--from-nmap", help="Read an nmap XML FILE instead of scanning."),
        ] = None,
        use_nmap: Annotated[
            bool,
            typer.Option(
                "--nmap",
                help="Run the installed nmap (-sV) instead of our engines, on what the scope "
                "gate admits; -T, --max-rate, --exclude, -p, -Pn are passed on.",
            ),
        ] = False,
        store: StoreOption = None,
    ) -> None:
        from ppsguard.scan.engine import ScanOptions
        from ppsguard.scan.plan import load_scope_file

        tokens = _tokens(targets, input_list)
        chosen = [name for name, on in (("connect", connect), ("syn", syn)) if on]
        if len(chosen) > 1:
            raise UsageError("choose one of --connect and --syn")
        options = ScanOptions(
            engine=chosen[0] if chosen else ("udp" if udp else None),
            udp=udp and bool(chosen),
            timing=timing,
            max_retries=max_retries,
            min_rate=min_rate,
            max_rate=max_rate,
            window=window,
            seed=seed,
            exclude=[t for t in (exclude or "").split(",") if t],
            scope=None if scope is None else load_scope_file(scope),
            skip_discovery=no_ping,
            discovery=discovery,
            ping_only=ping_only,
            confirm=not no_confirm,
            all_states=all_states,
            host_timeout=host_timeout,
            deadline=deadline,
            guess_services=not service,
            arguments="pps scan " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
            dry_run=dry_run,
            identify=service,
            service_timeout=service_timeout,
            intrusive=intrusive,
        )
        view = _View(as_json, as_jsonl, all_states, out_xml, out_grep, all_hosts)
        if from_nmap is not None:
            result = _from_nmap_file(from_nmap, options)
        elif not tokens:
            raise UsageError("no targets given (arguments or -iL FILE)")
        else:
            result = _scan(tokens, ports, top_ports, options, view, use_nmap=use_nmap)
        if result is not None:
            _emit(result, view)
            if store_url(store) is not None:  # 65,535 port documents are not built for nothing
                record(store, "scan", result_json(result))


@dataclasses.dataclass(frozen=True, slots=True)
class _View:
    """How the results are shown and written."""

    as_json: bool
    as_jsonl: bool
    all_states: bool
    out_xml: Path | None
    out_grep: Path | None
    all_hosts: bool = False


def _tokens(targets: list[str] | None, input_list: Path | None) -> list[str]:
    from ppsguard.scan.targets import split_tokens

    tokens = list(targets or [])
    if input_list is not None:
        tokens += split_tokens(_read(input_list, "target list"))
    return tokens


def _scan(
    tokens: list[str],
    ports: str | None,
    top: int | None,
    options: ScanOptions,
    view: _View,
    *,
    use_nmap: bool,
) -> ScanResult | None:
    """Plan through the scope gate; print the plan on a dry run, else run it (None: dry run)."""
    from ppsguard.scan.engine import run_plan, run_sync
    from ppsguard.scan.plan import plan_scan

    plan = run_sync(
        plan_scan(tokens, ports, top=top, options=options, engine="nmap" if use_nmap else None)
    )
    answers: UdpAnswers = {}
    if use_nmap:
        from ppsguard.scan.nmap_run import nmap_argv, run_nmap

        if options.dry_run:
            render_plan(plan, nmap_argv(plan, options, ports, top))
            return None
        result = run_nmap(plan, options, ports, top)
    elif options.dry_run:
        render_plan(plan)
        return None
    else:
        observer = ProgressObserver(
            progress=not (view.as_json or view.as_jsonl),
            jsonl=view.as_jsonl,
            all_states=view.all_states,
            port_row=_port_json,
        )
        try:
            result = run_sync(run_plan(plan, options, observer, answers=answers))
        finally:
            observer.stop()
    # our engines list silent UDP ports for -sV to ask; those it cannot prove open go again;
    # the UDP answers the scan heard are reused, not asked twice
    keep = options.all_states or use_nmap
    return _identify(result, plan.gate, options, keep_silent=keep, answers=answers)


def _from_nmap_file(path: Path, options: ScanOptions) -> ScanResult | None:
    """An nmap XML file as the result; -sV probes its open ports through the gate."""
    from ppsguard.scan.nmap_import import MAX_NMAP_BYTES, load_nmap_xml
    from ppsguard.scan.plan import gate_for

    result = load_nmap_xml(_read(path, "nmap XML", MAX_NMAP_BYTES), str(path))
    if options.identify and options.dry_run:
        from ppsguard.scan.identify.merge import open_ports

        wanted = open_ports(result)
        admitted = set(gate_for(options).admit_addresses(a for a, _, _ in wanted))
        count = sum(1 for a, _, _ in wanted if a in admitted)
        output.emit_line(
            f"dry run: would identify the services on {count} open port(s) of "
            f"{len(admitted)} host(s) from {path}"
        )
        return None
    return _identify(result, gate_for(options), options, keep_silent=True)  # nmap listed them


def _identify(
    result: ScanResult,
    gate: ScopeGate,
    options: ScanOptions,
    *,
    keep_silent: bool,
    answers: UdpAnswers | None = None,
) -> ScanResult:
    """-sV through the gate: open ports and silent UDP ones (an answer proves one open)."""
    if not options.identify:
        return result
    from ppsguard.scan.engine import run_sync
    from ppsguard.scan.identify import identify_open_ports

    return run_sync(
        identify_open_ports(
            result,
            gate=gate,
            timeout=options.service_timeout,
            intrusive=options.intrusive,
            window=options.window,
            keep_silent=keep_silent,
            answers=answers,
        )
    )


def _emit(result: ScanResult, view: _View) -> None:
    """The result on stdout (table, --json, --jsonl, or -oX - / -oG -), files beside it."""
    failures: list[PpsError] = []  # a file that fails never costs the result: raised after it
    if view.out_xml is not None:
        from ppsguard.report.nmapxml_stream import write_xml

        try:
            _write_atomic(view.out_xml, functools.partial(write_xml, result=result))
        except PpsError as failure:
            failures.append(failure)
    if view.out_grep is not None:
        from ppsguard.report.grepable import render_grepable

        text = render_grepable(result)
        try:
            _write_atomic(view.out_grep, lambda stream: stream.write(text))
        except PpsError as failure:
            failures.append(failure)
    if "-" not in (str(view.out_xml), str(view.out_grep)):  # -oX -: that is the result
        if view.as_json:
            output.emit_json(json_document(result, _builders()), plain=True)
        elif view.as_jsonl:
            rows = ({"type": "host", **host_json(h)} for h in result.hosts)
            output.emit_jsonl(rows, plain=True)
        else:
            render_table(result, view.all_hosts)
    from ppsguard.cli.files import raise_first

    raise_first(failures)
