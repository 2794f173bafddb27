"""The streaming writers write byte for byte what the reference serializer writes at once.

Random model values (scan results with hostile text, surrogates, every state and reason, TLS and
evidence) and random JSON trees go through `report.streams` piece by piece and through
`reference_json` (the standard library over the whole document); the bytes must be equal, for
compact and for pretty JSON, for JSONL lines, and CSV must match `csv.writer` over `csv_cell`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.cli.scan import _port_json, host_json, result_json
from ppsguard.cli.scan_render import Builders, json_document
from ppsguard.model.net import Protocol
from ppsguard.model.scan import (
    Confidence,
    Evidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
    TlsInfo,
)
from ppsguard.report.jsonout import to_jsonable
from ppsguard.report.sanitize import csv_cell
from ppsguard.report.streams import (
    Streamed,
    encode,
    reference_json,
    table_lines,
    write_csv,
    write_json,
    write_jsonl,
)

# Every character class, control characters, bidi overrides and lone surrogates included.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
# Floats the stdlib writes without an exponent (1e-4 <= |x| < 1e16, as the model's seconds and
# rates are): there msgspec writes the same digits. Outside it the two spell the same number
# differently (1e-05 / 0.00001, 1e+16 / 1e16): `test_all_floats_keep_their_value` covers those.
FLOATS = st.floats(min_value=0, max_value=1e9, allow_nan=False).filter(lambda f: "e" not in repr(f))
DATES = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)

SERVICES = st.builds(
    ServiceInfo,
    name=st.none() | TEXT,
    product=st.none() | TEXT,
    version=st.none() | TEXT,
    extra=st.none() | TEXT,
    cpe=st.lists(TEXT, max_size=2).map(tuple),
    confidence=st.sampled_from(Confidence),
    tls=st.none()
    | st.builds(
        TlsInfo,
        version=TEXT,
        cipher=TEXT,
        subject=st.none() | TEXT,
        sans=st.lists(TEXT, max_size=2).map(tuple),
        not_after=st.none() | DATES,
        self_signed=st.none() | st.booleans(),
    ),
    evidence=st.none() | st.builds(Evidence, probe=st.none() | TEXT, response=st.none() | TEXT),
)
PORTS = st.builds(
    PortResult,
    port=st.integers(0, 65535),
    protocol=st.sampled_from([Protocol.TCP, Protocol.UDP]),
    state=st.sampled_from(PortState),
    reason=st.sampled_from(Reason),
    service=st.none() | SERVICES,
    reason_ttl=st.none() | st.integers(0, 255),
)
HOSTS = st.builds(
    HostResult,
    address=st.none() | st.ip_addresses().map(lambda a: ipaddress.ip_address(str(a))),
    hostname=st.none() | TEXT,
    state=st.sampled_from(HostState),
    ports=st.lists(PORTS, max_size=6).map(tuple),
    summary=st.dictionaries(TEXT, st.integers(0, 65535), max_size=3),
    flags=st.lists(TEXT, max_size=2).map(tuple),
    error=st.none() | TEXT,
)
RESULTS = st.builds(
    ScanResult,
    hosts=st.lists(HOSTS, max_size=4).map(tuple),
    stats=st.builds(
        ScanStats,
        started=DATES,
        elapsed_s=FLOATS,
        probes_sent=st.integers(0, 10**9),
        retransmissions=st.integers(0, 10**9),
        seed=st.integers(0, 2**63),
    ),
    engine=TEXT,
    arguments=TEXT,
)
JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | FLOATS | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


def _written(document: Any, *, pretty: bool, plain: bool = False) -> bytes:
    out = io.BytesIO()
    write_json(out, document, pretty=pretty, plain=plain)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(RESULTS, st.booleans())
def test_scan_document_streamed_equals_reference(result: ScanResult, pretty: bool) -> None:
    builders = Builders(port=_port_json, host=host_json, result=result_json)
    streamed = _written(json_document(result, builders), pretty=pretty, plain=True)
    assert streamed == reference_json(result_json(result), pretty=pretty) + b"\n"
    json.loads(streamed)  # and it is JSON


@settings(max_examples=150, deadline=None)
@given(st.lists(HOSTS, max_size=5), st.booleans())
def test_model_values_streamed_equal_reference(hosts: list[HostResult], pretty: bool) -> None:
    document = {"head": hosts[:1], "hosts": Streamed(iter(hosts)), "tail": {"n": len(hosts)}}
    expected = {"head": hosts[:1], "hosts": hosts, "tail": {"n": len(hosts)}}
    assert _written(document, pretty=pretty) == reference_json(expected, pretty=pretty) + b"\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(JSON_TREES, max_size=6), st.booleans())
def test_json_trees(rows: list[Any], pretty: bool) -> None:
    assert _written(Streamed(rows), pretty=pretty) == reference_json(rows, pretty=pretty) + b"\n"
    out = io.BytesIO()
    write_jsonl(out, rows)
    expected = b"".join(reference_json(row) + b"\n" for row in rows)
    assert out.getvalue() == expected
    for row in rows:
        assert json.loads(encode(row)) == json.loads(reference_json(row))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({"a": TEXT, "b": st.none() | st.integers(), "c": TEXT})))
def test_csv_equals_csv_writer_over_csv_cell(rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    write_csv(out, ["a", "b", "c"], rows)
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(["a", "b", "c"])
    writer.writerows([[csv_cell(row[k]) for k in "abc"] for row in rows])
    assert out.getvalue() == expected.getvalue()
    for line in csv.reader(io.StringIO(out.getvalue())):
        assert all(not c or c[0] not in "=+-@" or c.lstrip("-").isdigit() for c in line)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(TEXT, min_size=3, max_size=3), max_size=8))
def test_plain_table_is_aligned_and_visible(rows: list[list[str]]) -> None:
    lines = list(table_lines(("one", "two", "three"), lambda: iter(rows)))
    assert len(lines) == len(rows) + 1
    for line in lines:
        assert line.isprintable()
    starts = {len(line) - len(line.split("  ")[-1]) for line in lines if "  " in line}
    assert starts  # the columns have a place


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_all_floats_keep_their_value(number: float) -> None:
    assert json.loads(encode([number])) == [number]


def test_lone_surrogate_is_a_json_escape() -> None:
    assert encode("a\udcffb") == b'"a\\udcffb"'
    assert json.loads(encode("a\udcffb")) == "a\udcffb"
    assert to_jsonable(b"\xff") == "\xff"


@settings(max_examples=150, deadline=None)
@given(RESULTS)
def test_nmap_xml_streamed_equals_element_tree(result: ScanResult) -> None:
    from xml.etree import ElementTree

    from ppsguard.report.nmapxml import render_xml
    from ppsguard.report.nmapxml_stream import write_xml

    out = io.StringIO()
    write_xml(out, result)
    assert out.getvalue() == render_xml(result)
    ElementTree.fromstring(out.getvalue().split("\n", 2)[2])  # well-formed, hostile text included
