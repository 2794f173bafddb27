"""NetFlow v5, v9 and IPFIX exports built byte by byte: records, templates per exporter and
domain, sampling, sequence gaps, and hostile exports (template floods, overruns)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ppsguard.flows.netflow import MAX_TEMPLATES, NetflowDecoder
from ppsguard.flows.stitch import Stitcher
from ppsguard.testing.exports import (
    FIELDS,
    data_record,
    data_set,
    ipfix,
    template_set,
    v5,
    v9,
)

A, B = ipaddress.ip_address("198.18.0.10").packed, ipaddress.ip_address("198.18.0.20").packed


def test_v5_records_sampling_and_gaps() -> None:
    decoder = NetflowDecoder()
    first = list(decoder.decode(v5(100, [(A, B, 40000, 80, 3, 180, 0x1B)]), "e", 0.0))
    assert len(first) == 1 and first[0].packets == 3 and first[0].dport == 80
    assert first[0].start == 1_800_000_000 - 10 + 9.0
    sampled = list(
        decoder.decode(v5(101, [(B, A, 80, 40000, 2, 120, 0x1B)], sampling=0x4000 | 10), "e", 0.0)
    )
    assert sampled[0].packets == 20 and sampled[0].size == 1200
    list(decoder.decode(v5(150, [(A, B, 1, 2, 1, 40, 2)]), "e", 0.0))
    assert (decoder.stats.gaps, decoder.stats.missing) == (1, 48)
    stitcher = Stitcher("t")
    assert list(stitcher.add(first[0])) == []  # a record waits for its partner
    (lone,) = stitcher.flush()
    assert lone.conn_state == "S0" and lone.resp_pkts == 0


def test_ipfix_templates_are_per_exporter_and_domain() -> None:
    decoder = NetflowDecoder()
    packet = ipfix(
        0,
        7,
        template_set(2, 300, FIELDS),
        data_set(
            300, data_record(A, B, 40000, 443, 10, 900), data_record(B, A, 443, 40000, 8, 4000)
        ),
    )
    records = list(decoder.decode(packet, "exporter-1", 0.0))
    assert [(r.sport, r.dport, r.packets, r.size) for r in records] == [
        (40000, 443, 10, 900),
        (443, 40000, 8, 4000),
    ]
    assert records[0].start == 1000.0 and records[0].end == 1002.0
    # the same template id from another exporter or domain is unknown there
    other = ipfix(0, 8, data_set(300, data_record(A, B, 1, 2, 1, 1)))
    assert list(decoder.decode(other, "exporter-1", 0.0)) == []
    assert (
        list(
            decoder.decode(
                ipfix(0, 7, data_set(300, data_record(A, B, 1, 2, 1, 1))), "exporter-2", 0.0
            )
        )
        == []
    )
    assert decoder.stats.no_template == 2
    stitcher = Stitcher("t")
    flows = [f for r in records for f in stitcher.add(r)]
    assert len(flows) == 1 and flows[0].orig_p == 40000 and flows[0].conn_state == "SF"
    assert (flows[0].orig_pkts, flows[0].resp_pkts) == (10, 8)


def test_v9_template_then_data() -> None:
    decoder = NetflowDecoder()
    body = template_set(0, 260, FIELDS[:8]) + data_set(
        260, data_record(A, B, 5353, 53, 1, 60)[:-16] + b"\0\0\0"
    )
    (record,) = decoder.decode(v9(1, body), "e", 0.0)
    assert (record.sport, record.dport, record.packets, record.size) == (5353, 53, 1, 60)


def test_a_template_flood_is_bounded() -> None:
    decoder = NetflowDecoder()
    chunk = 40
    for start in range(0, MAX_TEMPLATES + 50, chunk):
        part = b"".join(
            template_set(2, 256 + n, FIELDS)
            for n in range(start, min(start + chunk, MAX_TEMPLATES + 50))
        )
        list(decoder.decode(ipfix(0, 1, part), "flood", 0.0))
    assert len(decoder.exporters["flood"].templates) == MAX_TEMPLATES
    assert decoder.stats.template_drops == 50


@given(st.binary(max_size=2000))
def test_garbage_never_raises(data: bytes) -> None:
    decoder = NetflowDecoder()
    for version in (b"\x00\x05", b"\x00\x09", b"\x00\x0a"):
        list(decoder.decode(version + data, "fuzz", 0.0))
