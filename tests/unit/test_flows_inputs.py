"""Flow log readers (Zeek conn.log, VPC, firewall log lines), the writers, and hostile input:
each bad file gives one clear error naming the file and offset or line, never a crash or hang."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.errors import InputError
from ppsguard.flows.capture import CaptureError
from ppsguard.flows.inputs import read_flows
from ppsguard.flows.records import zeek_document
from ppsguard.testing.packets import SYN, ethernet, ipv4, tcp, write_pcap, write_pcapng

FRAME = ethernet(ipv4(tcp(40000, 22, SYN, seq=1), "198.18.0.10", "198.18.0.20"))


def pcap(tmp_path: Path, count: int = 3) -> Path:
    path = tmp_path / "t.pcap"
    write_pcap(path, [(float(i), FRAME) for i in range(count)])
    return path


def test_zeek_tsv_round_trip(tmp_path: Path) -> None:
    flows = list(read_flows(pcap(tmp_path)))
    log = tmp_path / "conn.log"
    log.write_text(zeek_document(flows))
    text = log.read_text()
    assert text.startswith("#separator \\x09\n") and "#fields\tts\tuid\tid.orig_h" in text
    again = list(read_flows(log))
    assert [(f.uid, f.conn_state, f.orig_pkts, f.history) for f in again] == [
        (f.uid, f.conn_state, f.orig_pkts, f.history) for f in flows
    ]


def test_zeek_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "conn.json"
    record = {
        "ts": 1.5, "uid": "Cabc", "id.orig_h": "198.18.0.1", "id.orig_p": 5, "id.resp_h":
        "2001:db8::1", "id.resp_p": 443, "proto": "tcp", "conn_state": "SF", "orig_pkts": 4,
    }  # fmt: skip
    log.write_text(json.dumps(record) + "\n")
    (flow,) = read_flows(log)
    assert (flow.resp_p, flow.conn_state, flow.orig_pkts, flow.duration) == (443, "SF", 4, None)


def test_vpc_records_are_stitched_into_biflows(tmp_path: Path) -> None:
    lines = [
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        "start end action log-status",
        "2 123 eni-1 198.18.0.5 198.18.0.9 49152 443 6 10 840 100 160 ACCEPT OK",
        "2 123 eni-1 198.18.0.9 198.18.0.5 443 49152 6 8 4000 100 160 ACCEPT OK",
        "2 123 eni-1 198.18.0.7 198.18.0.9 50000 22 6 1 60 100 160 REJECT OK",
        "2 123 eni-1 - - - - - - - 100 160 - NODATA",
    ]
    path = tmp_path / "vpc.log.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    flows = sorted(read_flows(path), key=lambda f: f.resp_p)
    assert [(f.resp_p, f.conn_state, f.orig_pkts, f.resp_pkts, f.action) for f in flows] == [
        (22, "REJ", 1, 0, "REJECT"),
        (443, "SF", 10, 8, "ACCEPT"),
    ]
    assert str(flows[1].orig_h) == "198.18.0.5"


def test_firewall_log_lines_map_to_entries(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    path.write_text(
        "Dec  2 07:14:48 fw kernel: [ 12.345678] pps:mysql IN=eth0 OUT= SRC=198.18.0.50 "
        "DST=198.18.0.1 LEN=60 TOS=0x00 PROTO=TCP SPT=41234 DPT=3306 WINDOW=64240 SYN URGP=0\n"
        "Dec  2 07:14:49 fw kernel: [ 13.1] pps:mysql IN=eth0 OUT= SRC=198.18.0.50 "
        "DST=198.18.0.1 LEN=60 PROTO=TCP SPT=41234 DPT=3306 SYN URGP=0\n"
        "2026-12-02T07:15:00.5+00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.18.0.51 "
        "DST=198.18.0.1 LEN=40 PROTO=UDP SPT=5000 DPT=161 LEN=20\n"
        "a line that says nothing\n"
    )
    flows = list(read_flows(path))
    assert [(f.entry, f.action, f.orig_pkts, f.resp_p, f.conn_state) for f in flows] == [
        ("mysql", "LOGGED", 2, 3306, "S0"),
        (None, "BLOCK", 1, 161, "OTH"),
    ]


def test_firewall_log_lines_with_impossible_stamps_or_numbers_are_counted_skips(
    tmp_path: Path,
) -> None:
    """Found by the fuzzing harness: a month "Dac" (KeyError) or a day 32 (ValueError) crashed
    the reader; "²" passes str.isdigit() but not int()."""
    rest = "IN=eth0 OUT= SRC=198.18.0.50 DST=198.18.0.1 LEN=60 PROTO=TCP SPT=41234 DPT=3306 SYN\n"
    path = tmp_path / "kern.log"
    path.write_text(
        f"Dac  2 07:14:48 fw kernel: {rest}"
        f"Dec 32 07:14:48 fw kernel: {rest}"
        f"2026-13-45T99:00:00Z fw kernel: {rest}"
        "Dec  2 07:14:50 fw kernel: IN=eth0 OUT= SRC=198.18.0.50 DST=198.18.0.1 LEN=6\u00b2 "
        "PROTO=TCP SPT=4\u00b2 DPT=99999 SYN\n"
    )
    stats: dict[str, int] = {}
    flows = list(read_flows(path, stats=stats))
    assert stats["skipped"] == 3
    assert [(f.orig_p, f.resp_p, f.orig_ip_bytes) for f in flows] == [(0, 0, 0)]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("wrong-magic.pcap", b"GIF89a" + b"\0" * 40, "not a capture"),
        ("garbage.pcap", b"\xd4\xc3\xb2\xa1" + b"\0" * 4, "truncated pcap file header"),
        (
            "huge-record.pcap",
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            + struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 0xFFFFFFFF),
            "record claims 4294967295 bytes (snap length 65535) at byte offset 24",
        ),
        (
            "block-loop.pcapng",
            b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 0) + b"\x4d\x3c\x2b\x1a",
            "pcapng block of impossible length 0 at byte offset 0",
        ),
        ("conn.log", b"#separator \\x09\n#fields\tts\tuid\n\x00\xff\x01garbage\n", "conn.log:3: "),
        (
            "vpc.log",
            b"version srcaddr dstaddr\n2 198.18.0.1\n",
            "vpc.log:2: not a VPC flow log line: 2 fields",
        ),
        (  # found by the fuzzing harness (a protocol past 255 crashed the Community ID)
            "vpc-protocol.log",
            b"version srcaddr dstaddr srcport dstport protocol\n2 198.18.0.1 198.18.0.2 1 2 446\n",
            "vpc-protocol.log:2: not a VPC flow log line: protocol 446 is not in 0-255",
        ),
        (
            "eve.json",
            b'{"event_type": "flow", "src_ip": "198.18.0.1", "dest_ip": "198.18.0.2", '
            b'"proto": "TCP", "src_port": 70000, "dest_port": 1, "flow": {"start": '
            b'"2026-12-02T07:14:48.000000+0000"}}\n',
            "eve.json:1: not a Suricata EVE event: src_port 70000 is not in 0-65535",
        ),
        ("sep.log", b"#separator\n", "sep.log:1: not a Zeek conn.log line: a #separator line"),
        (  # found by the fuzzing harness: GzipFile's EOFError and zlib.error escaped
            "cut.log.gz",
            gzip.compress(b"version srcaddr dstaddr\n" * 50)[:25],
            "not a whole gzip stream",
        ),
        ("bad.log.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 40, "not a whole gzip stream"),
    ],
)
def test_bad_input_is_one_clear_error(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        list(read_flows(path, "vpc" if name == "vpc.log" else "auto"))
    assert expected in str(caught.value) and str(path) in str(caught.value)


def test_truncated_capture_and_zero_snaplen_are_counted_not_fatal(tmp_path: Path) -> None:
    path = pcap(tmp_path, 3)
    path.write_bytes(path.read_bytes()[:-10])
    stats: dict[str, int] = {}
    flows = list(read_flows(path, stats=stats))
    assert stats["truncated"] == 1 and flows[0].orig_pkts == 2
    zero = tmp_path / "zero.pcap"
    zero.write_bytes(
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0, 1)
        + struct.pack("<IIII", 0, 0, len(FRAME), len(FRAME))
        + FRAME
    )
    assert len(list(read_flows(zero))) == 1


def test_a_pcapng_of_empty_frames_is_counted_not_fatal(tmp_path: Path) -> None:
    """Found by the fuzzing harness: frames of zero bytes made an empty chunk buffer, and the
    vectorised decoder indexed into it (IndexError)."""
    path = tmp_path / "empty-frames.pcapng"
    write_pcapng(path, [(1.0, b""), (2.0, b"")])
    stats: dict[str, int] = {}
    assert list(read_flows(path, stats=stats)) == []
    assert (stats["frames"], stats["undecoded"]) == (2, 2)


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        list(read_flows(fifo))
    with pytest.raises(CaptureError):
        (tmp_path / "empty.pcap").write_bytes(b"")
        list(read_flows(tmp_path / "empty.pcap", "pcap"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_read_formats_and_errors(tmp_path: Path) -> None:
    path = pcap(tmp_path)
    jsonl = run("read", str(path))
    assert jsonl.returncode == 0 and jsonl.stderr == ""
    record = json.loads(jsonl.stdout.splitlines()[0])
    assert record["id.resp_p"] == 22 and record["conn_state"] == "S0"
    assert record["source"] == f"pcap:{path}"
    zeek = run("read", "--zeek", str(path))
    assert zeek.stdout.splitlines()[6].startswith("#fields\tts\tuid")
    csv = run("read", "--csv", str(path))
    assert csv.stdout.splitlines()[0].startswith("ts,uid,id.orig_h")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"nonsense")
    failed = run("read", str(bad))
    assert failed.returncode == 2 and failed.stdout == ""
    assert len(failed.stderr.strip().splitlines()) == 1 and "bad.pcap" in failed.stderr


def test_suricata_eve_flow_and_netflow_events(tmp_path: Path) -> None:
    events = [
        {
            "timestamp": "2026-12-02T07:00:01.000000+0000",
            "event_type": "flow",
            "src_ip": "198.18.0.5",
            "src_port": 40000,
            "dest_ip": "198.18.0.9",
            "dest_port": 443,
            "proto": "TCP",
            "app_proto": "tls",
            "flow": {
                "pkts_toserver": 6,
                "pkts_toclient": 5,
                "bytes_toserver": 700,
                "bytes_toclient": 3000,
                "start": "2026-12-02T07:00:00.000000+0000",
                "end": "2026-12-02T07:00:01.500000+0000",
                "state": "closed",
                "reason": "timeout",
            },
        },
        {
            "event_type": "netflow",
            "src_ip": "198.18.0.7",
            "src_port": 53000,
            "dest_ip": "198.18.0.9",
            "dest_port": 53,
            "proto": "UDP",
            "netflow": {
                "pkts": 1,
                "bytes": 70,
                "start": "2026-12-02T07:00:02.000000+0000",
                "end": "2026-12-02T07:00:02.000000+0000",
            },
        },
        {
            "event_type": "netflow",
            "src_ip": "198.18.0.9",
            "src_port": 53,
            "dest_ip": "198.18.0.7",
            "dest_port": 53000,
            "proto": "UDP",
            "netflow": {
                "pkts": 1,
                "bytes": 120,
                "start": "2026-12-02T07:00:02.000000+0000",
                "end": "2026-12-02T07:00:02.001000+0000",
            },
        },
        {"event_type": "alert", "src_ip": "198.18.0.7"},
    ]
    path = tmp_path / "eve.json"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    flows = sorted(read_flows(path), key=lambda f: f.resp_p)
    assert [(f.resp_p, f.service, f.conn_state, f.orig_pkts, f.resp_ip_bytes) for f in flows] == [
        (53, None, "SF", 1, 120),
        (443, "tls", "SF", 6, 3000),
    ]
    assert flows[1].duration == 1.5 and flows[0].orig_p == 53000


def test_flows_csv_cells_and_notes_pass_the_one_sanitizer(tmp_path: Path) -> None:
    path = tmp_path / "kern\x1b[2J.log"
    path.write_text(
        "Dec  2 07:14:48 fw kernel: [1.0] pps:=HYPERLINK(x) IN=eth0 OUT= SRC=198.18.0.50 "
        "DST=198.18.0.1 LEN=60 PROTO=TCP SPT=41234 DPT=3306 SYN URGP=0\n"
    )
    done = run("read", "--csv", str(path))
    assert done.returncode == 0 and "\x1b" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("ts,uid")
    assert "\\x1b[2J" in done.stdout  # the file name, in the source column, shown visibly


def test_the_flows_commands_give_the_cycle_collector_its_thresholds_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pps flows read` runs the collector less often (live flows have no cycles) and restores
    its thresholds when it returns, also after an error."""
    import gc

    from typer.testing import CliRunner

    import ppsguard.flows.inputs
    from ppsguard.cli.app import app

    seen: list[tuple[int, ...]] = []
    reader = ppsguard.flows.inputs.read_flows

    def spying(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.get_threshold())
        return reader(*args, **kwargs)

    monkeypatch.setattr(ppsguard.flows.inputs, "read_flows", spying)
    before = gc.get_threshold()
    read = CliRunner().invoke(app, ["flows", "read", str(pcap(tmp_path))])
    assert read.exit_code == 0 and len(read.output.splitlines()) == 1
    assert seen == [(50_000, 20, 100)] and gc.get_threshold() == before
    bad = CliRunner().invoke(app, ["flows", "read", str(tmp_path / "missing.pcap")])
    assert isinstance(bad.exception, InputError) and gc.get_threshold() == before
