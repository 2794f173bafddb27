"""The machine documents against their shipped JSON Schemas, on REAL output of the commands.

Each command runs as a user runs it (a subprocess on this machine's loopback: real sockets, a
real TLS listener for `-sV`); its output must validate against the schema named in it, load back
into the model, and rebuild byte-for-byte the same document. Round trips over random model values
are in tests/property/test_document_roundtrip.py; lab-sized outputs in the lab tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ppsguard.errors import InputError
from ppsguard.report import documents
from ppsguard.report.audit_document import audit_document, load_audit
from ppsguard.report.policy_documents import (
    explain_document,
    lint_document,
    load_explain,
    load_lint,
)
from ppsguard.report.reader import load_document
from ppsguard.report.scan_document import load_scan, scan_document
from ppsguard.report.sockets_document import load_sockets, socket_document
from ppsguard.testing.certificates import self_signed_pem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SEED = ROOT / "examples" / "seed-building.yaml"


def pps(*args: str | Path, ok: tuple[int, ...] = (0,)) -> str:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode in ok, done.stderr[-2000:]
    return done.stdout


def check(document: Any) -> str:
    """Validate against the shipped schema; return the schema name."""
    name = documents.validate(document)
    jsonschema.validate(document, documents.json_schema(name))  # the library's own verdict too
    return name


@pytest.mark.parametrize("name", sorted(documents.VERSIONS))
def test_every_schema_ships_in_the_package_and_is_valid(name: str) -> None:
    shipped = resources.files("ppsguard.report").joinpath(f"schemas/{name}.json")
    schema = json.loads(shipped.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"] == {"const": name}
    assert schema["properties"]["version"] == {"const": documents.VERSIONS[name]}
    assert schema["required"][:2] == ["schema", "version"]


def test_no_stray_schema_files() -> None:
    folder = resources.files("ppsguard.report").joinpath("schemas")
    names = {p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")}
    assert names == set(documents.VERSIONS)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def test_sockets_json_and_jsonl_are_socket_documents(listener: int) -> None:
    rows = json.loads(pps("sockets", "--all", "--json"))
    assert any(r["local_port"] == listener for r in rows)
    for row in rows:
        assert check(row) == "ppsguard.socket"
    assert [socket_document(r) for r in load_sockets(rows)] == rows
    lines = pps("sockets", "--port", str(listener), "--jsonl").splitlines()
    assert lines and all(check(json.loads(line)) == "ppsguard.socket" for line in lines)


@pytest.fixture
def tls_listener(tmp_path: Path) -> Iterator[int]:
    """A real TLS server on loopback with a self-signed certificate (for `-sV`'s tls object)."""
    cert, key = self_signed_pem(tmp_path, common_name="doc.example", expired=False, sans=["a.b"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(1024), 3)
            writer.write(b"HTTP/1.0 200 OK\r\nServer: doc-test\r\n\r\n")
            await writer.drain()
        except (OSError, TimeoutError, ssl.SSLError):
            pass  # plaintext probes and closed connections: expected
        finally:
            writer.transport.abort()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", 0, ssl=context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def test_scan_json_is_a_scan_document_with_services_and_tls(
    listener: int, tls_listener: int
) -> None:
    ports = f"{listener},{tls_listener}"
    text = pps("scan", "--connect", "-sV", "--json", "127.0.0.1", "-p", ports, "--all-states")
    doc = json.loads(text)
    assert check(doc) == "ppsguard.scan"
    by_port = {p["port"]: p for p in doc["hosts"][0]["ports"]}
    assert by_port[tls_listener]["service"]["tls"]["subject"]  # the tls object was exercised
    assert scan_document(load_scan(doc)) == doc
    assert load_document(doc) == load_scan(doc)


def test_big_scan_compact_json_is_a_scan_document(listener: int) -> None:
    doc = json.loads(
        pps("scan", "--connect", "--json", "127.0.0.1", "-p", "1-1500", "--all-states")
    )
    assert check(doc) == "ppsguard.scan" and len(doc["hosts"][0]["ports"]) == 1500
    assert scan_document(load_scan(doc)) == doc


def test_audit_json_is_an_audit_document(listener: int) -> None:
    doc = json.loads(pps("audit", "--no-scan", "--json", ok=(0, 1)))
    assert check(doc) == "ppsguard.audit"
    assert any(d["port"] == listener for d in doc["doors"])
    assert audit_document(load_audit(doc), load_audit_threshold(doc)) == doc


def load_audit_threshold(doc: dict[str, Any]) -> Any:
    from ppsguard.model.findings import Severity

    return Severity(doc["summary"]["fail_on"])


@pytest.mark.parametrize("registry", EXAMPLES, ids=lambda p: p.name)
def test_lint_json_is_a_lint_document(registry: Path) -> None:
    doc = json.loads(pps("policy", "lint", registry, "--json", ok=(0, 1)))
    assert check(doc) == "ppsguard.lint"
    assert lint_document(load_lint(doc)) == doc


@pytest.mark.parametrize(
    ("source", "port"),
    [("198.18.0.14", "110/tcp"), ("198.18.0.11", "110/tcp"), ("2001:db8::9", "80/tcp")],
)
def test_explain_json_is_an_explain_document(source: str, port: str) -> None:
    doc = json.loads(pps("policy", "explain", SEED, "--from", source, "--to-port", port, "--json"))
    assert check(doc) == "ppsguard.explain"
    assert explain_document(load_explain(doc)) == doc


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a ppsguard document: a JSON array"),
        ({"schema": "ppsguard.nope", "version": 1}, "unknown schema"),
        ({"schema": "ppsguard.scan", "version": 2}, "newer than this ppsguard reads"),
        ({"schema": "ppsguard.scan", "version": True}, "positive integer"),
        ({"schema": "ppsguard.scan", "version": 1, "hosts": []}, "'stats' is a required property"),
        (
            {
                "schema": "ppsguard.explain",
                "version": 1,
                "verdict": "maybe",
                "log": True,
                "entry": {"id": "x", "file": "f", "line": 1},
                "reason": "r",
            },
            "verdict: 'maybe' is not one of",
        ),
    ],
)
def test_loaders_refuse_bad_documents_with_one_line(document: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_document(document)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_loader_refuses_another_kind_of_document() -> None:
    doc = json.loads(
        pps("policy", "explain", SEED, "--from", "198.18.0.1", "--to-port", "21/tcp", "--json")
    )
    with pytest.raises(
        InputError, match=r"expected a ppsguard\.scan document, got ppsguard\.explain"
    ):
        load_scan(doc)


def test_read_document_takes_json_text() -> None:
    from ppsguard.report.reader import read_document

    text = pps("policy", "explain", SEED, "--from", "198.18.0.1", "--to-port", "25/tcp", "--json")
    assert read_document(text) == load_explain(json.loads(text))
    with pytest.raises(InputError) as caught:
        read_document('{"schema": "ppsguard.scan",\n  nope}')
    assert (caught.value.line, caught.value.column) == (2, 3)
