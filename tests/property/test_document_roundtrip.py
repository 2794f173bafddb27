"""Every document round-trips: model -> document -> JSON text -> loader -> the same model.

Random model values (hypothesis) through the builders in `ppsguard.report`, serialised by the
json module as `pps` prints them, validated against the shipped schema by the loader, and read
back; the result must equal the value we started from. Real command output is checked in
tests/unit/test_documents.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.model.findings import (
    AuditReport,
    Door,
    DoorStatus,
    Finding,
    FindingType,
    Remedy,
    Severity,
)
from ppsguard.model.net import Family, Protocol, RangeClass
from ppsguard.model.registry import SourceLocation
from ppsguard.model.scan import (
    Confidence,
    Evidence,
    HostResult,
    HostState,
    Mismatch,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
    TlsInfo,
)
from ppsguard.model.sockets import (
    ContainerRef,
    Exposure,
    Inventory,
    NetnsInfo,
    Owner,
    Role,
    SocketRecord,
    SocketState,
)
from ppsguard.policy.evaluate import EntryRef, Explanation
from ppsguard.policy.lint_findings import Finding as LintFinding
from ppsguard.policy.lint_findings import FindingLevel, PacketExample
from ppsguard.report import documents
from ppsguard.report.audit_document import audit_document, load_audit
from ppsguard.report.policy_documents import (
    explain_document,
    lint_document,
    load_explain,
    load_lint,
)
from ppsguard.report.reader import load_document
from ppsguard.report.scan_document import load_scan, scan_document, scan_json_compact
from ppsguard.report.sockets_document import (
    inventory_document,
    load_inventory,
    load_socket,
    socket_document,
)

text = st.text(max_size=12)
maybe_text = st.none() | text
ports = st.integers(0, 65535)
small = st.integers(0, 2**40)
times = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
addresses = st.ip_addresses()
finite = st.floats(allow_nan=False, allow_infinity=False)


def through_json(document: Any) -> Any:
    """As `pps` prints it and a reader parses it."""
    return json.loads(json.dumps(document, ensure_ascii=False))


# ---- sockets
netns = st.builds(
    NetnsInfo,
    inode=small,
    name=maybe_text,
    pid=st.none() | small,
    container=st.none() | st.builds(ContainerRef, runtime=text, id=text, name=maybe_text),
)
owners = st.builds(
    Owner,
    pid=small,
    comm=text,
    exe=maybe_text,
    cmdline=st.lists(text, max_size=3).map(tuple),
    user=maybe_text,
    uid=st.none() | small,
)
records = st.builds(
    SocketRecord,
    protocol=st.sampled_from(Protocol),
    family=st.sampled_from(Family),
    state=st.sampled_from(SocketState),
    role=st.sampled_from(Role),
    local_address=addresses,
    local_port=ports,
    remote_address=addresses,
    remote_port=ports,
    exposure=st.sampled_from(Exposure),
    inode=small,
    uid=small,
    user=maybe_text,
    netns=netns,
    owners=st.lists(owners, max_size=3).map(tuple),
    kernel_owned=st.booleans(),
    cgroup=maybe_text,
    unit=maybe_text,
    port_range=st.none() | st.sampled_from(RangeClass),
    service=maybe_text,
    v6only=st.none() | st.booleans(),
)


@given(records)
@settings(deadline=None)  # no timing assertions: the machine is shared
def test_socket_round_trip(record: SocketRecord) -> None:
    assert load_socket(through_json(socket_document(record))) == record


@given(
    st.builds(
        Inventory,
        records=st.lists(records, max_size=4).map(tuple),
        gaps=st.lists(text, max_size=2).map(tuple),
        namespaces=st.lists(netns, max_size=2).map(tuple),
        source=st.sampled_from(["netlink", "procfs"]),
        owners_resolved=st.booleans(),
    )
)
@settings(max_examples=50, deadline=None)
def test_inventory_round_trip(inventory: Inventory) -> None:
    assert load_inventory(through_json(inventory_document(inventory))) == inventory


# ---- scan
tls = st.builds(
    TlsInfo,
    version=text,
    cipher=text,
    subject=maybe_text,
    issuer=maybe_text,
    sans=st.lists(text, max_size=2).map(tuple),
    not_before=st.none() | times,
    not_after=st.none() | times,
    self_signed=st.none() | st.booleans(),
    expired=st.none() | st.booleans(),
    starttls=maybe_text,
)
services = st.builds(
    ServiceInfo,
    name=maybe_text,
    product=maybe_text,
    version=maybe_text,
    extra=maybe_text,
    cpe=st.lists(text, max_size=2).map(tuple),
    confidence=st.sampled_from(Confidence),
    tls=st.none() | tls,
    evidence=st.none()
    | st.builds(Evidence, probe=maybe_text, response=maybe_text, elapsed_s=st.none() | finite),
    mismatch=st.none() | st.builds(Mismatch, expected=text, found=text),
)
port_results = st.builds(
    PortResult,
    port=ports,
    protocol=st.sampled_from(Protocol),
    state=st.sampled_from(PortState),
    reason=st.sampled_from(Reason),
    service=st.none() | services,
    reason_ttl=st.none() | st.integers(0, 255),
)
hosts = st.builds(
    HostResult,
    address=st.none() | addresses,
    hostname=maybe_text,
    state=st.sampled_from(HostState),
    ports=st.lists(port_results, max_size=5).map(tuple),
    summary=st.dictionaries(st.sampled_from([s.value for s in PortState]), small, max_size=3),
    flags=st.lists(text, max_size=2).map(tuple),
    error=maybe_text,
    reason=st.none() | st.sampled_from(Reason),
)
bare_hosts = st.builds(
    HostResult,
    address=addresses,
    hostname=st.none(),
    state=st.sampled_from(HostState),
    error=maybe_text,
    reason=st.none() | st.sampled_from(Reason),
)
scans = st.builds(
    ScanResult,
    hosts=st.lists(hosts | bare_hosts, max_size=4).map(tuple),
    stats=st.builds(
        ScanStats,
        started=times,
        elapsed_s=finite,
        probes_sent=small,
        retransmissions=small,
        seed=small,
    ),
    engine=st.sampled_from(["connect", "syn", "udp", "nmap"]),
    arguments=text,
)


@given(scans)
@settings(max_examples=75, deadline=None)
def test_scan_round_trip_and_compact_writer(result: ScanResult) -> None:
    document = scan_document(result)
    assert load_scan(through_json(document)) == result
    compact = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    assert scan_json_compact(result) == compact


# ---- audit
findings = st.builds(
    Finding,
    id=text,
    type=st.sampled_from(FindingType),
    severity=st.sampled_from(Severity),
    title=text,
    protocol=st.none() | st.sampled_from(Protocol),
    family=st.none() | st.sampled_from(Family),
    address=maybe_text,
    port=st.none() | ports,
    process=maybe_text,
    entry=maybe_text,
    entry_location=maybe_text,
    evidence=st.lists(text, max_size=2).map(tuple),
    remedy=st.builds(
        Remedy,
        summary=text,
        commands=st.lists(text, max_size=2).map(tuple),
        registry_yaml=maybe_text,
    ),
    pids=st.lists(small, max_size=2).map(tuple),
)
doors = st.builds(
    Door,
    protocol=st.sampled_from(Protocol),
    port=ports,
    status=st.sampled_from(DoorStatus),
    service=maybe_text,
    process=maybe_text,
    addresses=st.lists(text, max_size=2).map(tuple),
    reachable=st.none() | st.booleans(),
    findings=st.lists(text, max_size=2).map(tuple),
    banner=maybe_text,
    entry=maybe_text,
)
reports = st.builds(
    AuditReport,
    host=text,
    observed_at=times,
    findings=st.lists(findings, max_size=4).map(tuple),
    doors=st.lists(doors, max_size=3).map(tuple),
    registry=maybe_text,
    views=st.dictionaries(text, text, max_size=3),
    gaps=st.lists(text, max_size=2).map(tuple),
    draft_hint=maybe_text,
)


@given(reports, st.sampled_from(Severity))
@settings(max_examples=75, deadline=None)
def test_audit_round_trip(report: AuditReport, fail_on: Severity) -> None:
    document = through_json(audit_document(report, fail_on))
    assert load_audit(document) == report
    assert document["summary"]["failing"] == len(report.failing(fail_on))


# ---- policy
lint_findings = st.builds(
    LintFinding,
    level=st.sampled_from(FindingLevel),
    code=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
    message=text,
    host=maybe_text,
    entries=st.lists(text, max_size=3).map(tuple),
    location=st.builds(SourceLocation, file=text, line=small, column=small),
    example=st.none()
    | st.builds(
        PacketExample,
        source=text,
        port=ports,
        protocol=st.sampled_from(["tcp", "udp"]),
        destination=maybe_text,
    ),
)


@given(st.lists(lint_findings, max_size=5))
@settings(deadline=None)  # no timing assertions: the machine is shared
def test_lint_round_trip(found: list[LintFinding]) -> None:
    assert load_lint(through_json(lint_document(found))) == tuple(found)


@given(
    st.builds(
        Explanation,
        verdict=st.sampled_from(["allow", "deny"]),
        log=st.booleans(),
        entry=st.builds(EntryRef, id=text, file=text, line=small),
        reason=text,
    )
)
@settings(deadline=None)  # no timing assertions: the machine is shared
def test_explain_round_trip(explanation: Explanation) -> None:
    document = through_json(explain_document(explanation))
    assert load_explain(document) == explanation
    assert load_document(document) == explanation


# ---- hostile documents: only InputError ever comes out of a loader
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)


@given(st.sampled_from(sorted(documents.VERSIONS)), st.dictionaries(text, json_values))
@settings(max_examples=200, deadline=None)
def test_random_documents_load_or_fail_with_one_input_error(name: str, body: Any) -> None:
    value = {"schema": name, "version": 1, **body}
    try:
        load_document(value)
    except InputError as error:
        assert "\n" not in str(error)


@given(records, st.sampled_from(["local_address", "remote_address"]), text)
@settings(deadline=None)  # no timing assertions: the machine is shared
def test_an_address_the_schema_allows_but_the_model_refuses(
    record: SocketRecord, key: str, garbage: str
) -> None:
    document = through_json(socket_document(record))
    document[key] = "not-an-address:" + garbage
    with pytest.raises(InputError, match=r"ppsguard\.socket: a value does not fit"):
        load_socket(document)


def test_a_date_the_model_refuses() -> None:
    result = ScanResult((), ScanStats(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0.1, 1, 0, 1))
    document = through_json(scan_document(result))
    document["stats"]["started"] = "soon"
    with pytest.raises(InputError, match="a value does not fit"):
        load_scan(document)
