"""Flows as documents: JSON lines with Zeek's conn.log JSON names, CSV, and Zeek's TSV conn.log.

JSONL keys are exactly Zeek's (`ts`, `uid`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`,
`proto`, `service`, `duration`, `orig_bytes`, `resp_bytes`, `conn_state`, `missed_bytes`,
`history`, `orig_pkts`, `orig_ip_bytes`, `resp_pkts`, `resp_ip_bytes`, `tunnel_parents`,
`community_id`) plus `source`; missing values are left out, as Zeek's JSON writer does. The TSV
writer emits Zeek's `#separator`/`#fields`/`#types` header (`-` unset, `(empty)` empty set), so
zeek-cut, RITA and zat read it. Pure: functions return text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ppsguard.model.flows import Flow
from ppsguard.model.net import ip_text

FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "missed_bytes", "history",
    "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents",
    "community_id",
)  # fmt: skip
TYPES = (
    "time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count",
    "count", "string", "count", "string", "count", "count", "count", "count", "set[string]",
    "string",
)  # fmt: skip


def flow_values(flow: Flow) -> tuple[Any, ...]:
    return (
        flow.ts, flow.uid, ip_text(flow.orig_h), flow.orig_p, ip_text(flow.resp_h),
        flow.resp_p, flow.proto, flow.service, flow.duration, flow.orig_bytes, flow.resp_bytes,
        flow.conn_state, flow.missed_bytes, flow.history, flow.orig_pkts, flow.orig_ip_bytes,
        flow.resp_pkts, flow.resp_ip_bytes, list(flow.tunnel_parents), flow.community_id,
    )  # fmt: skip


def flow_record(flow: Flow) -> dict[str, Any]:
    """One JSONL record (missing values left out, `source` added)."""
    record = {k: v for k, v in zip(FIELDS, flow_values(flow), strict=True) if v is not None}
    if not flow.tunnel_parents:
        record.pop("tunnel_parents", None)
    if flow.action is not None:
        record["action"] = flow.action
    if flow.entry is not None:
        record["entry"] = flow.entry
    record["source"] = flow.source
    return record


def _tsv(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(_escape(str(v)) for v in value) if value else "(empty)"
    if isinstance(value, float):
        return f"{value:.6f}"
    text = _escape(str(value))
    return text if text else "(empty)"


def _escape(text: str) -> str:
    """Zeek escapes the separator and non-printable bytes as \\xNN."""
    return "".join(c if c.isprintable() and c not in "\t\\," else f"\\x{ord(c):02x}" for c in text)


def zeek_header(opened: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(opened or time.time()))
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\tconn\n#open\t{stamp}\n#fields\t" + "\t".join(FIELDS) + "\n"
        "#types\t" + "\t".join(TYPES) + "\n"
    )


def zeek_line(flow: Flow) -> str:
    return "\t".join(_tsv(v) for v in flow_values(flow)) + "\n"


def zeek_footer(closed: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(closed or time.time()))
    return f"#close\t{stamp}\n"


CSV_COLUMNS = (*FIELDS, "source")


def csv_values(flow: Flow) -> list[object]:
    """One CSV row's values (sets joined by spaces); the writer guards each cell
    (`report.sanitize.csv_cell`, the one formula guard)."""
    return [
        " ".join(value) if isinstance(value, list) else value
        for value in (*flow_values(flow), flow.source)
    ]


def zeek_document(flows: Iterable[Flow]) -> str:
    return zeek_header() + "".join(zeek_line(f) for f in flows) + zeek_footer()
