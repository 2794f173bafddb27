"""An echo listener reflects our probes; it must be named `echo`, never the protocol we spoke."""

from __future__ import annotations

import asyncio

import pytest

from ppsguard.model.net import Protocol
from ppsguard.scan.identify import identify_services

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("port", [80, 445, 7777])
def test_echo_listener_is_identified_as_echo(lab_factory, port):
    lab = lab_factory(["scanner", "target"])
    target = lab["target"]
    target.listen(port)  # the lab's listener echoes what it reads
    key = (target.ipv4, port, Protocol.TCP)
    found = lab["scanner"].call(lambda: asyncio.run(identify_services([key], timeout=2.0)))
    service = found[key]
    assert service.name == "echo"
    assert service.evidence is not None and service.evidence.response
