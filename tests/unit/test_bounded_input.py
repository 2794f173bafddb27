"""Hostile input files (#18 items 4 and 7): every reader of outside files is bounded, refuses
special files without hanging, and every hostile shape is one error line with exit 2.

The commands run for real in a subprocess against real special files: /dev/zero, a FIFO with no
writer (a reader that blocks would hang the test past its timeout), a folder, and standard input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.errors import InputError
from ppsguard.infile import read_bytes, read_text
from ppsguard.model.registry import ServicePort
from ppsguard.registry.load import load_registry, parse_registry
from ppsguard.scan.nmap_import import load_nmap_xml

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-building.yaml"
NMAP_SV = ROOT / "tests" / "samples" / "services" / "nmap-sv.xml"


def pps(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "500", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *map(str, args)],
        capture_output=True,
        input=stdin,
        timeout=60,  # a reader that blocks on a FIFO fails here instead of hanging CI
        env=env,
        cwd=ROOT,
        check=False,
    )


def one_error(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


DEV_ZERO_COMMANDS = [
    ("registry", "validate", "/dev/zero"),
    ("registry", "init", "--from-nmap", "/dev/zero"),
    ("scan", "-iL", "/dev/zero"),
    ("scan", "--from-nmap", "/dev/zero"),
    ("scan", "--scope", "/dev/zero", "198.18.0.1"),
    ("audit", str(SEED), "--from-nmap", "/dev/zero"),
    ("policy", "compile", "/dev/zero"),
    ("watch", "/dev/zero", "--duration", "1"),
    ("flows", "read", "/dev/zero"),
]


@pytest.mark.parametrize("args", DEV_ZERO_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_dev_zero_is_refused_as_a_device(args: tuple[str, ...]) -> None:
    one_error(pps(*args), "/dev/zero", "character device, not a regular file")


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "validate", "{fifo}"),
        ("registry", "init", "--from-nmap", "{fifo}"),
        ("scan", "-iL", "{fifo}"),
        ("scan", "--scope", "{fifo}", "198.18.0.1"),
        ("scan", "--from-nmap", "{fifo}"),
        ("policy", "explain", "{fifo}", "--from", "198.18.0.1", "--to-port", "22/tcp"),
        ("flows", "read", "{fifo}"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_fifo_never_hangs(args: tuple[str, ...], fifo: Path) -> None:
    one_error(pps(*(a.format(fifo=fifo) for a in args)), "FIFO")


def test_fifo_as_include_never_hangs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "more.yaml")
    main = tmp_path / "main.yaml"
    main.write_text("include: [more.yaml]\nhosts:\n  h: {}\n")
    one_error(pps("registry", "validate", main), "more.yaml", "FIFO")


def test_folder_is_refused(tmp_path: Path) -> None:
    one_error(pps("registry", "validate", tmp_path), "folder")


def test_registry_from_standard_input() -> None:
    result = pps("registry", "validate", "-", stdin=SEED.read_bytes())
    assert result.returncode == 0, result.stderr
    assert b"valid: 1 hosts" in result.stdout + result.stderr


def test_standard_input_is_bounded() -> None:
    result = pps("registry", "validate", "-", stdin=b"#" * (4 * 1024 * 1024 + 10))
    one_error(result, "<stdin>", "larger than the 4,194,304 bytes allowed")


def test_limit_enforced_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bytes(path, limit=100) == b"x" * 100
    with pytest.raises(InputError, match="larger than the 99 bytes"):
        read_bytes(path, limit=99)


def test_missing_file_is_input_error_with_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no-such\.yaml"):
        read_text(tmp_path / "no-such.yaml", limit=10, what="registry")


def test_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"ok \xe9")
    with pytest.raises(InputError, match="byte 3"):
        read_text(path, limit=100)


def test_nesting_400_levels_is_one_error() -> None:
    text = "hosts: " + "[" * 400 + "]" * 400 + "\n"
    assert len(text) < 820
    with pytest.raises(InputError, match="nested more than 64 levels"):
        parse_registry(text, "deep.yaml")


@pytest.mark.parametrize("reverse", [False, True], ids=["defined-in-order", "defined-reversed"])
def test_network_chain_5000_deep_is_one_error(tmp_path: Path, reverse: bool) -> None:
    names = [f"  n{i}: [n{i - 1}]" for i in range(1, 5000)]
    lines = ["networks:", *(reversed(names) if reverse else names), "  n0: [198.18.0.0/24]"]
    lines += ["hosts:", "  h:", "    provides:", "      - {port: 22/tcp, from: n4999}"]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    one_error(pps("registry", "validate", path), "references deep")


def test_dedup_of_32000_ports_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """32,000 ports written twice in one ~400 KB entry: each duplicate found by hashing, so
    equality is compared about once per port, never once per pair (the old list scan)."""
    ports = ", ".join(f"{p}/tcp" for p in range(1, 32001))
    text = (
        "hosts:\n  h:\n    provides:\n"
        f"      - {{id: many, from: anywhere, port: [{ports}, {ports}]}}\n"
        f"services:\n  big: [{ports}, {ports}]\n"
    )
    calls = 0
    original = ServicePort.__eq__

    def counting(self: ServicePort, other: object) -> bool:
        nonlocal calls
        calls += 1
        return original(self, other)

    monkeypatch.setattr(ServicePort, "__eq__", counting)
    registry = parse_registry(text, "many.yaml")
    assert len(registry.hosts[0].provides[0].ports) == 32000
    assert len(registry.services[0].ports) == 32000
    assert calls < 4 * 64000  # the quadratic scan made ~10^9 comparisons


# --- item 7: the smaller defects --------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "--from-nmap", "{xml}"),
        ("registry", "init", "--from-nmap", "{xml}"),
        ("audit", str(SEED), "--from-nmap", "{xml}"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_nmap_start_overflow_is_one_error(args: tuple[str, ...], tmp_path: Path) -> None:
    xml = tmp_path / "big-start.xml"
    xml.write_text(
        NMAP_SV.read_text().replace('start="1795690000"', 'start="99999999999999999999"')
    )
    one_error(pps(*(a.format(xml=xml) for a in args)), "start is not a usable Unix time")


def test_nmap_non_ascii_port_is_refused() -> None:
    text = NMAP_SV.read_text().replace('portid="22"', 'portid="٢٢"')
    with pytest.raises(InputError, match="port number out of range"):
        load_nmap_xml(text, "scan.xml")


def test_nmap_non_finite_elapsed_is_zero() -> None:
    text = NMAP_SV.read_text().replace('elapsed="11.20"', 'elapsed="nan"')
    assert load_nmap_xml(text, "scan.xml").stats.elapsed_s == 0.0


@pytest.mark.parametrize("port", ["٢٢/tcp", "２２/tcp", "2２"])
def test_explain_refuses_non_ascii_port(port: str) -> None:
    one_error(
        pps("policy", "explain", SEED, "--from", "198.18.0.1", "--to-port", port), "--to-port"
    )


def test_explain_reads_ipv4_mapped_source_as_ipv4() -> None:
    plain = pps(
        "policy", "explain", SEED, "--from", "198.18.0.11", "--to-port", "110/tcp", "--json"
    )
    mapped = pps(
        "policy", "explain", SEED, "--from", "::ffff:198.18.0.11", "--to-port", "110/tcp", "--json"
    )
    assert plain.returncode == mapped.returncode == 0, mapped.stderr
    assert plain.stdout == mapped.stdout


def test_explain_refuses_zone_index() -> None:
    one_error(
        pps("policy", "explain", SEED, "--from", "fe80::1%eth0", "--to-port", "22/tcp"),
        "zone index",
    )


@pytest.mark.parametrize(
    ("address", "hint"),
    [("::ffff:198.18.0.7", "write 198.18.0.7"), ("::ffff:198.18.0.0/120", "write 198.18.0.0/24")],
)
def test_ipv4_mapped_refused_everywhere(address: str, hint: str) -> None:
    for text in (
        f'networks:\n  n: ["{address}"]\nhosts:\n  h: {{}}\n',
        f'hosts:\n  h:\n    provides:\n      - {{port: 22/tcp, from: "{address}"}}\n',
        "hosts:\n  h:\n    provides:\n"
        f'      - {{port: 22/tcp, from: anywhere, except: "{address}"}}\n',
    ):
        with pytest.raises(InputError, match="IPv4-mapped") as caught:
            parse_registry(text, "r.yaml")
        assert hint in str(caught.value)


def test_zoned_host_address_refused() -> None:
    with pytest.raises(InputError, match="zone index"):
        parse_registry('hosts:\n  h:\n    addresses: ["fe80::1%eth0"]\n', "r.yaml")


def test_draft_from_nmap_compiles(tmp_path: Path) -> None:
    """Service names from nmap (`ssl/http`, `http-proxy?`) become ids `policy compile` takes."""
    text = NMAP_SV.read_text()
    text = text.replace('<service name="ssh"', '<service name="ssl/http?"')
    text = text.replace('<service name="redis"', '<service name="a b*c"')
    xml = tmp_path / "odd-names.xml"
    xml.write_text(text)
    draft = tmp_path / "draft.yaml"
    result = pps("registry", "init", "--from-nmap", xml, "-o", draft)
    assert result.returncode == 0, result.stderr
    registry = load_registry(draft)
    ids = [e.id for e in registry.hosts[0].provides]
    assert "ssl-http" in ids
    compiled = pps("policy", "compile", draft)
    assert compiled.returncode == 0, compiled.stderr
    compiled = pps("policy", "compile", draft, "--target", "iptables")
    assert compiled.returncode == 0, compiled.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("port", "٢٢"),
        ("port", "２２/tcp"),
        ("scan", "-p", "٢٢", "127.0.0.1", "--dry-run"),
        ("scan", "-p", "T:２２", "127.0.0.1", "--dry-run"),
    ],
    ids=["port-arabic", "port-fullwidth", "scan-p-arabic", "scan-p-fullwidth"],
)
def test_non_ascii_digits_refused_as_ports_everywhere(args: tuple[str, ...]) -> None:
    one_error(pps(*args))


def test_lint_of_32000_ports_stays_readable(tmp_path: Path) -> None:
    """Every risk finding names the entry's ports: cut to a few, never 32,000 per line."""
    ports = ", ".join(f"{p}/tcp" for p in range(1, 32001))
    path = tmp_path / "many.yaml"
    path.write_text(
        f"hosts:\n  h:\n    provides:\n      - {{id: many, from: anywhere, port: [{ports}]}}\n"
    )
    result = pps("policy", "lint", path)
    assert result.returncode == 1, result.stderr
    output = b" ".join((result.stdout + result.stderr).split())  # however the lines wrap
    assert len(output) < 100_000
    assert b"1/tcp, 2/tcp, 3/tcp, 4/tcp, 5/tcp, 6/tcp, 7/tcp, 8/tcp, ... (32,000 in all)" in output
