"""`pps flows read | audit`: the traffic evidence people hold, as flows, held against the registry.

Thin: open the files (flows.inputs), write flows (flows.records) or audit them (flows.audit).
"""

from __future__ import annotations

import csv
import functools
import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from ppsguard.cli.storeopt import StoreOption
from ppsguard.report.sanitize import csv_cell, visible

if TYPE_CHECKING:
    from ppsguard.errors import PpsError
    from ppsguard.model.flows import Flow

P = ParamSpec("P")
R = TypeVar("R")

_READ_HELP = """Read captures (pcap, pcapng), Zeek conn.log (TSV or JSON), Suricata EVE (flow and
netflow events), AWS VPC flow logs, kernel firewall log lines (iptables LOG, nftables log, ufw)
and captures of NetFlow/IPFIX exports (--format netflow); print one flow per line."""
_READ_HELP += (  # one line per paragraph: Typer keeps the line breaks of later paragraphs
    "\n\nCaptures become bidirectional flows with Zeek's semantics: conn_state (S0, S1, SF, REJ, "
    "...), history letters, per-direction packets and bytes, and Zeek's inactivity timeouts "
    "(TCP 5 min, UDP and ICMP 1 min). VLAN, QinQ, MPLS, PPPoE, SLL/SLL2 and loopback links, "
    "IPv6 extension headers, GRE, VXLAN, Geneve and IP-in-IP tunnels are decoded (inner flows "
    "name their tunnel)."
    "\n\nOutput: JSON lines with Zeek's conn.log names (--jsonl, the default), --csv, --zeek "
    "(a conn.log TSV with Zeek's header that zeek-cut reads) or --parquet FILE. Every flow "
    "carries its Community ID."
)

_COLLECT_HELP = """Receive NetFlow v5, v9 and IPFIX exports on a UDP socket and print one biflow per
line (the two one-way records of a connection stitched together). Templates are cached per
exporter and observation domain, sampling rates are applied, and sequence gaps (evidence lost)
are counted and reported when the collector stops (SIGTERM, Ctrl-C or --duration)."""

_FORMAT_HELP = "auto, pcap, zeek, eve, vpc, netlog, netflow or parquet."

_AUDIT_HELP = """Hold flows against the registry: which flows it allowed, which broke it (a denied
peer that got through), which services nobody documented were used, which outbound connections
no `uses` entry covers, who scanned whom (the TRW detector of `pps watch`), and the attempts
each deny entry stopped. --markdown FILE and --html FILE also write the audit as a report in the
formats of `pps audit` (written atomically). Exit 1 when there are findings."""
_AUDIT_HELP += (  # one line per paragraph: Typer keeps the line breaks of later paragraphs
    "\n\nPATHs are files, folders (read recursively, Hive partitions included) or globs. "
    "Every engine gives the same document: local reads any evidence format in this process, "
    "duckdb reads Parquet and CSV tables of flows in place, spark runs the same evaluator on a "
    "Spark cluster (it needs pyspark, from the spark extra of ppsguard, and Java) and also "
    "reads URLs such as s3a://. See docs/flows-at-scale.md."
)


_ENGINE_HELP = """auto (DuckDB for Parquet/CSV tables of flows, else local), local (this process,
any format), duckdb (reads Parquet/CSV in place) or spark (a Spark cluster, --spark-master)."""


def register(app: typer.Typer) -> None:
    """Add the `flows` group to `app`."""
    group = typer.Typer(
        help="Traffic evidence as flows, held against the registry.", no_args_is_help=True
    )

    @group.command("read", help=_READ_HELP, short_help="Print the flows in evidence files.")
    @_fewer_collections
    def read_command(  # noqa: PLR0917 - one parameter per command-line option
        files: Annotated[
            list[Path], typer.Argument(help="Evidence files (- for stdin).", metavar="FILE...")
        ],
        fmt: Annotated[
            str,
            typer.Option("--format", help=_FORMAT_HELP),
        ] = "auto",
        as_jsonl: Annotated[
            bool, typer.Option("--jsonl", help="JSON lines, Zeek's names (the default).")
        ] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
        as_zeek: Annotated[bool, typer.Option("--zeek", help="Zeek conn.log TSV.")] = False,
        parquet: Annotated[
            Path | None,
            typer.Option("--parquet", help="Write the flows to this Parquet file instead."),
        ] = None,
        skip_bad: Annotated[
            bool, typer.Option("--skip-bad", help="Count and skip lines that do not parse.")
        ] = False,
    ) -> None:
        import orjson

        from ppsguard.errors import UsageError
        from ppsguard.flows import records
        from ppsguard.flows.inputs import FORMATS, read_flows

        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}", token=fmt)
        if sum((as_jsonl, as_csv, as_zeek, parquet is not None)) > 1:
            raise UsageError(
                "choose one of --jsonl, --csv, --zeek and --parquet",
                token="--parquet" if parquet is not None else ("--zeek" if as_zeek else "--csv"),
            )
        if parquet is not None:
            from ppsguard.flows.columnar import write_parquet
            from ppsguard.flows.pandas_free import skip_pandas

            skip_pandas()

            def every() -> Iterator[Flow]:
                for path in files:
                    stats: dict[str, int] = {}
                    yield from read_flows(path, fmt, skip_bad=skip_bad, stats=stats)
                    _notes(path, stats)

            written = write_parquet(every(), parquet)
            sys.stderr.write(f"pps flows: {written} flows written to {visible(parquet)}\n")
            return
        out = sys.stdout
        writer = csv.writer(out) if as_csv else None
        if writer is not None:
            writer.writerow(records.CSV_COLUMNS)
        if as_zeek:
            out.write(records.zeek_header())
        count = 0
        for path in files:
            stats: dict[str, int] = {}
            for flow in read_flows(path, fmt, skip_bad=skip_bad, stats=stats):
                count += 1
                if writer is not None:
                    writer.writerow([csv_cell(v) for v in records.csv_values(flow)])
                elif as_zeek:
                    out.write(records.zeek_line(flow))
                else:
                    out.write(orjson.dumps(records.flow_record(flow)).decode() + "\n")
            _notes(path, stats)
        if as_zeek:
            out.write(records.zeek_footer())
        out.flush()

    @group.command("audit", help=_AUDIT_HELP, short_help="Hold flows against the registry.")
    @_fewer_collections
    def audit_command(  # noqa: PLR0917 - Typer maps parameters to options
        registry: Annotated[Path, typer.Argument(help="The PPS registry.", metavar="REGISTRY")],
        files: Annotated[
            list[str],
            typer.Argument(
                help="Evidence files, folders or globs (Spark: URLs).", metavar="PATH..."
            ),
        ],
        host: Annotated[str | None, typer.Option("--host", help="The registry host.")] = None,
        fmt: Annotated[
            str,
            typer.Option("--format", help=_FORMAT_HELP + " (the local engine)"),
        ] = "auto",
        as_json: Annotated[bool, typer.Option("--json", help="The audit as JSON.")] = False,
        store: StoreOption = None,
        engine: Annotated[str, typer.Option("--engine", help=_ENGINE_HELP)] = "auto",
        spark_master: Annotated[
            str | None,
            typer.Option(
                "--spark-master", help="Spark master URL (default local[*]).", metavar="URL"
            ),
        ] = None,
        partitions: Annotated[
            int | None, typer.Option("--partitions", help="Spark: repartition to N.", min=1)
        ] = None,
        markdown: Annotated[
            Path | None, typer.Option("--markdown", help="Also write a Markdown report to FILE.")
        ] = None,
        html_file: Annotated[
            Path | None, typer.Option("--html", help="Also write an HTML report to FILE.")
        ] = None,
    ) -> None:
        from ppsguard.cli.output import emit_json
        from ppsguard.cli.storeopt import record
        from ppsguard.errors import UsageError
        from ppsguard.flows.audit import document
        from ppsguard.flows.engines import ENGINES, run_audit
        from ppsguard.flows.engines.sources import expand
        from ppsguard.flows.pandas_free import skip_pandas
        from ppsguard.registry.load import load_registry

        if engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}", token=engine)
        if engine != "spark":  # PySpark's driver may hand pyarrow pandas objects
            skip_pandas()
        loaded = load_registry(registry)
        sources = expand(files)
        result = run_audit(
            engine, loaded, sources, host, fmt=fmt, spark_master=spark_master,
            partitions=partitions, progress=sys.stderr.isatty(),
        )  # fmt: skip
        doc = document(result)
        if as_json:
            emit_json(doc)
        else:
            _print_audit(doc)
        failures = _write_reports(doc, markdown, html_file)
        record(store, "flows-audit", doc, registry=registry)
        if failures:
            from ppsguard.cli.files import raise_first

            raise_first(failures)
        findings = doc["findings"]
        assert isinstance(findings, list)
        raise typer.Exit(1 if any(f["type"] != "denied-attempts" for f in findings) else 0)

    @group.command("collect", help=_COLLECT_HELP, short_help="Collect NetFlow/IPFIX exports.")
    def collect_command(
        listen: Annotated[
            str, typer.Option("--listen", help="ADDRESS:PORT to receive exports on.")
        ] = "127.0.0.1:2055",
        duration: Annotated[
            float | None, typer.Option("--duration", help="Stop after this many seconds.", min=0.1)
        ] = None,
        as_zeek: Annotated[bool, typer.Option("--zeek", help="Zeek conn.log TSV.")] = False,
    ) -> None:
        import signal
        import threading

        import orjson

        from ppsguard.flows import records
        from ppsguard.flows.collector import collect
        from ppsguard.flows.netflow import NetflowDecoder

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        decoder = NetflowDecoder()
        out = sys.stdout
        if as_zeek:
            out.write(records.zeek_header())
        for flow in collect(listen, decoder=decoder, duration=duration, stop=stop):
            if as_zeek:
                out.write(records.zeek_line(flow))
            else:
                out.write(orjson.dumps(records.flow_record(flow)).decode() + "\n")
            out.flush()
        if as_zeek:
            out.write(records.zeek_footer())
        counters = decoder.stats
        sys.stderr.write(
            f"pps flows collect: {counters.datagrams} datagrams, {counters.records} records, "
            f"{counters.gaps} sequence gaps ({counters.missing} missing), "
            f"{counters.no_template} sets without a template, {counters.errors} errors\n"
        )

    app.add_typer(group, name="flows")


def _fewer_collections(command: Callable[P, R]) -> Callable[P, R]:
    """Run Python's cycle collector less often while the command runs. A capture's live flows are
    hundreds of thousands of small, long-lived objects without cycles, and with the default
    thresholds (700, 10, 10) the collector traversed them again and again: 1M packets of 166,666
    flows spent 2.5-3 s of 8.2-9.6 s in it, 6.5-7.1 s with (50,000, 20, 100) (2026-12). Cycles
    are still collected; the thresholds are restored when the command returns."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        before = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        try:
            return command(*args, **kwargs)
        finally:
            gc.set_threshold(*before)

    return run


def _notes(path: Path, stats: dict[str, int]) -> None:
    parts = [
        f"{k} {v}" for k, v in stats.items() if v and k in ("truncated", "undecoded", "skipped")
    ]
    if parts:
        sys.stderr.write(f"pps flows: {visible(path)}: " + ", ".join(parts) + "\n")


def _write_reports(
    doc: dict[str, object], markdown: Path | None, html_file: Path | None
) -> list[PpsError]:
    """`--markdown` and `--html` through the one atomic writer; failures raised by the caller."""
    from ppsguard.cli.files import write_outputs
    from ppsguard.report.flows_html import render_flows_html
    from ppsguard.report.flows_markdown import render_flows_markdown

    return write_outputs(
        [
            (markdown, lambda: render_flows_markdown(doc)),
            (html_file, lambda: render_flows_html(doc)),
        ]
    )


def _print_audit(doc: dict[str, object]) -> None:
    out = sys.stdout
    findings = doc["findings"]
    assert isinstance(findings, list)
    out.write(
        f"flows audit of {visible(doc['host'])}: {doc['flows']} flows, {len(findings)} findings\n"
    )
    for finding in findings:
        out.write(
            f"{finding['severity']:<7} {finding['type']:<22} {finding['count']:>8}  "
            + visible(finding["message"])
            + "\n"
        )
    entries = doc["entries"]
    assert isinstance(entries, list)
    if entries:
        out.write("entry                          connections  allowed  peers\n")
        for entry in entries:
            out.write(
                f"{visible(entry['entry']):<30} {entry['connections']:>11} "
                f"{entry['allowed']:>8} {entry['peers']:>6}\n"
            )
