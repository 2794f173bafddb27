"""Flows to Parquet and back, VPC flow logs kept as Parquet, and the writer's atomicity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ppsguard.errors import InputError
from ppsguard.flows.columnar import SCHEMA, write_parquet
from ppsguard.flows.inputs import read_flows
from ppsguard.testing.packets import ACK, SYN, ethernet, ipv4, tcp, udp, write_pcap


def capture(tmp_path: Path) -> Path:
    frames = []
    for n in range(50):
        client = f"198.18.1.{n}"
        frames += [
            ethernet(ipv4(tcp(40000 + n, 443, SYN, seq=1), client, "198.18.0.9")),
            ethernet(ipv4(tcp(443, 40000 + n, SYN | ACK, seq=7, ack=2), "198.18.0.9", client)),
            ethernet(ipv4(udp(5000 + n, 53, b"q"), client, "198.18.0.9")),
        ]
    path = tmp_path / "c.pcap"
    write_pcap(path, [(float(i), f) for i, f in enumerate(frames)])
    return path


def test_parquet_round_trip_keeps_every_field(tmp_path: Path) -> None:
    flows = list(read_flows(capture(tmp_path)))
    out = tmp_path / "flows.parquet"
    assert write_parquet(iter(flows), out) == 100
    table = pq.read_table(out)
    assert table.schema.equals(SCHEMA) and table.num_rows == 100
    assert list(read_flows(out)) == flows
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_vpc_parquet_is_stitched_like_the_text_format(tmp_path: Path) -> None:
    rows = {
        "version": [2, 2, 2],
        "srcaddr": ["198.18.0.5", "198.18.0.9", "198.18.0.7"],
        "dstaddr": ["198.18.0.9", "198.18.0.5", "198.18.0.9"],
        "srcport": [49152, 443, 50000],
        "dstport": [443, 49152, 22],
        "protocol": [6, 6, 6],
        "packets": [10, 8, 1],
        "bytes": [840, 4000, 60],
        "start": [100, 100, 100],
        "end": [160, 160, 160],
        "action": ["ACCEPT", "ACCEPT", "REJECT"],
        "log-status": ["OK", "OK", "OK"],
    }
    path = tmp_path / "vpc.parquet"
    pq.write_table(pa.table(rows), path)
    flows = sorted(read_flows(path), key=lambda f: f.resp_p)
    assert [(f.resp_p, f.conn_state, f.orig_pkts, f.resp_pkts) for f in flows] == [
        (22, "REJ", 1, 0),
        (443, "SF", 10, 8),
    ]
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"srcaddr": ["198.18.0.1"]}), broken)
    with pytest.raises(InputError, match="without column"):
        list(read_flows(broken))


def test_cli_parquet_output_and_a_missing_folder(tmp_path: Path) -> None:
    path = capture(tmp_path)
    out = tmp_path / "out.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "read", str(path), "--parquet", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "100 flows written" in done.stderr
    assert pq.read_metadata(out).num_rows == 100
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "flows",
            "read",
            str(path),
            "--parquet",
            str(tmp_path / "no" / "x.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_cli_jsonl_is_the_default_and_formats_exclude_each_other(tmp_path: Path) -> None:
    path = capture(tmp_path)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ppsguard", "flows", "read", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    default, jsonl = run(), run("--jsonl")
    assert default.returncode == jsonl.returncode == 0
    assert default.stdout == jsonl.stdout and len(jsonl.stdout.splitlines()) == 100
    both = run("--jsonl", "--zeek")
    assert both.returncode == 2 and both.stdout == ""
    assert both.stderr.strip() == (
        "pps: error: choose one of --jsonl, --csv, --zeek and --parquet: '--zeek'"
    )
