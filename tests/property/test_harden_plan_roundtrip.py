"""The `ppsguard.harden-plan` document: any plan validates against its schema and reads back."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from ppsguard.harden.plan import (
    NARROW,
    NONE,
    STOP,
    BindChange,
    Change,
    FindingRef,
    Plan,
    UnitAction,
)
from ppsguard.harden.units import UnitKind
from ppsguard.report import documents
from ppsguard.report.harden_document import load_plan, plan_document

text = st.text(max_size=40)
maybe = st.none() | text
unit = st.from_regex(r"\A[a-z][a-z0-9@_-]{0,12}\.(service|socket)\Z")
bind = st.builds(
    BindChange,
    daemon=text,
    key=text,
    narrow=text,
    default=text,
    source=text,
    file=maybe,
    line=st.none() | st.integers(1, 10_000),
    current=maybe,
)
change = st.builds(
    Change,
    protocol=st.sampled_from(["tcp", "udp"]),
    address=st.sampled_from(["0.0.0.0", "::", "198.18.0.1", "2001:db8::1"]),
    port=st.integers(0, 65535),
    service=maybe,
    findings=st.lists(
        st.builds(
            FindingRef,
            id=st.from_regex(r"\A[0-9a-f]{16}\Z"),
            type=st.sampled_from(["unregistered-listener", "risky-service"]),
            severity=st.sampled_from(["low", "medium", "high"]),
            title=text,
        ),
        max_size=3,
    ).map(tuple),
    action=st.sampled_from([STOP, NARROW, NONE]),
    why=text,
    kind=st.sampled_from([k.value for k in UnitKind]),
    process=maybe,
    exe=maybe,
    user=maybe,
    pids=st.lists(st.integers(1, 4_000_000), max_size=4).map(tuple),
    cgroup=maybe,
    service_unit=st.none() | unit,
    socket_unit=st.none() | unit,
    container=maybe,
    bind=st.none() | bind,
    package=maybe,
)
plans = st.builds(
    Plan,
    host=text,
    created_at=st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.replace(microsecond=0)),
    registry=maybe,
    netns=maybe,
    changes=st.lists(change, max_size=4).map(tuple),
    units=st.lists(
        st.builds(UnitAction, name=unit, doors=st.lists(text, max_size=2).map(tuple)), max_size=3
    ).map(tuple),
    protected=st.lists(unit, max_size=3).map(tuple),
    gaps=st.lists(text, max_size=2).map(tuple),
)


@given(plans)
def test_plan_document_round_trip(plan: Plan) -> None:
    document = json.loads(json.dumps(plan_document(plan)))
    assert documents.validate(document) == "ppsguard.harden-plan"
    assert load_plan(document) == plan
