"""One generated test per sample: the signature files' samples and tests/samples/services/*.txt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ppsguard.scan.identify import classify, signatures
from ppsguard.scan.identify.signatures import decode_escaped

SAMPLES_DIR = Path(__file__).parent.parent / "samples" / "services"


def _file_samples() -> list[Any]:
    cases = []
    for path in sorted(SAMPLES_DIR.glob("*.txt")):
        probe, expect, number = "null", None, 0
        for line_number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if line.startswith("# probe:"):
                probe = line.split(":", 1)[1].strip()
            elif line.startswith("# expect:"):
                expect = json.loads(line.split(":", 1)[1])
            elif line and not line.startswith("#"):
                number += 1
                cases.append(
                    pytest.param(
                        probe, decode_escaped(line), expect, id=f"{path.stem}:{line_number}"
                    )
                )
    return cases


def _signature_samples() -> list[Any]:
    return [
        pytest.param(sample.probe, sample.response, sample.expect, sample.port, id=f"{sig.id}#{n}")
        for sig in signatures.builtin_signatures()
        for n, sample in enumerate(sig.samples, start=1)
    ]


def _check(
    probe: str, response: bytes, expect: dict[str, Any] | None, port: int | None = None
) -> None:
    found = classify.interpret(probe, response, port=port)
    if expect is None:
        assert found is None or found.name is None, found
        return
    assert found is not None
    for key, wanted in expect.items():
        value = getattr(found, key)
        assert (str(value) if value is not None else "") == wanted, (key, found)


@pytest.mark.parametrize(("probe", "response", "expect", "port"), _signature_samples())
def test_signature_sample(
    probe: str, response: bytes, expect: dict[str, Any], port: int | None
) -> None:
    _check(probe, response, expect, port)


@pytest.mark.parametrize(("probe", "response", "expect"), _file_samples())
def test_annotated_sample(probe: str, response: bytes, expect: dict[str, Any] | None) -> None:
    _check(probe, response, expect)


def test_every_signature_has_a_sample_and_ids_are_unique() -> None:
    all_signatures = signatures.builtin_signatures()
    assert all(sig.samples for sig in all_signatures), [
        s.id for s in all_signatures if not s.samples
    ]
    ids = [sig.id for sig in all_signatures]
    assert len(ids) == len(set(ids))


def test_sample_files_exist_and_are_not_empty() -> None:
    assert len(_file_samples()) >= 10
