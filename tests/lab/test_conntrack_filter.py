"""The BPF program on the conntrack socket, in a real kernel: a short TCP connection reaches the
watch as two messages (NEW and the answer) instead of seven, a refused one still gives its
failed attempt, and with the program detached every update comes through again: the same
events either way."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from test_firewall_helpers import probe

from ppsguard.lab.hosts import HostSpec
from ppsguard.model.events import EventKind
from ppsguard.monitor.conntrack import ConntrackSource, disable_tracking, enable_tracking

SO_DETACH_FILTER = 27


@pytest.mark.lab
@pytest.mark.parametrize("filtered", [True, False])
def test_the_kernel_drops_the_updates_that_give_no_event(lab_factory, filtered: bool) -> None:
    lab = lab_factory(
        [HostSpec("target", ipv4="198.18.0.2"), HostSpec("client", ipv4="198.18.0.12")]
    )
    target, client = lab["target"], lab["client"]
    target.listen(80)
    local = [ipaddress.ip_address(target.ipv4)]
    target.call(enable_tracking)
    source = target.call(lambda: ConntrackSource(local))  # the socket stays in target's namespace
    try:
        assert source.filtered
        if not filtered:
            source.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        outcome, accepted_port = probe(client, target.ipv4, 80, "tcp")
        assert outcome == "accepted"
        refused, refused_port = probe(client, target.ipv4, 81, "tcp")
        assert refused == "refused"
        events = []
        for _ in range(10):
            events += source.read(0.3)
        kinds = {
            port: [(e.kind, e.answered) for e in events if e.orig_port == port]
            for port in (accepted_port, refused_port)
        }
    finally:
        source.close()
        target.call(disable_tracking)
    assert kinds[accepted_port] == [(EventKind.OPENED, False), (EventKind.ANSWERED, True)]
    assert kinds[refused_port] == [(EventKind.OPENED, False), (EventKind.CLOSED, False)]
    # the accepted connection: NEW, ESTABLISHED (and SYN_RECV, FIN_WAIT ... TIME_WAIT without
    # the program); the refused one: NEW and DESTROY
    if filtered:
        assert source.messages == 4
    else:
        assert source.messages >= 7
