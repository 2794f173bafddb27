"""Established sessions survive the first apply on a host where connection tracking was off.

Two real long-lived TCP connections cross the lab before any rule set exists (so conntrack has
never seen them): one from a client into the firewall host on a port the registry does not allow
(7000), one from the firewall host out to the client (7001). After the seed policy (default deny)
is applied, both still carry data in both directions — the first packet in each direction is
the inbound one, which conntrack would pick up mid-stream as `new` — while a NEW connection to
7000 is dropped as the registry says. The control case (`keep_established=False`) shows the
defect this guards against: the same inbound packet is dropped.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_firewall_helpers import probe

from ppsguard.firewall.apply import apply_policy
from ppsguard.firewall.nft import Runner
from ppsguard.firewall.statedir import StateDir
from ppsguard.lab.hosts import Host
from ppsguard.policy.compile import compile_host_policy
from ppsguard.registry.load import load_registry

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"


def _server(host: Host, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((str(host.ipv4), port))
        sock.listen(4)
        return sock

    return host.call(make)


def _connect(host: Host, peer: Host, port: int) -> socket.socket:
    return host.call(lambda: socket.create_connection((str(peer.ipv4), port), timeout=5))


def _passes(sender: socket.socket, receiver: socket.socket, data: bytes) -> bool:
    sender.sendall(data)
    receiver.settimeout(3)
    try:
        return receiver.recv(64) == data
    except TimeoutError:
        return False


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "control-without-the-fix"])
def test_long_lived_connections_survive_the_first_apply(
    lab_factory, tmp_path: Path, keep: bool
) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["fw", "client"])
    fw, client = lab["fw"], lab["client"]
    inbound_server = _server(fw, 7000)
    inbound = _connect(client, fw, 7000)
    inbound_peer, _ = inbound_server.accept()
    outbound_server = _server(client, 7001)
    outbound = _connect(fw, client, 7001)
    outbound_peer, _ = outbound_server.accept()
    try:
        assert _passes(inbound, inbound_peer, b"before-in")
        assert _passes(outbound_peer, outbound, b"before-out")
        # nothing was tracked: no rule set ever used `ct` in this namespace
        assert "7000" not in fw.run(["conntrack", "-L"]).stdout
        policy = compile_host_policy(load_registry(SEED))
        outcome = apply_policy(
            policy,
            runner=Runner(netns=fw.netns),
            state=StateDir.for_netns(fw.netns, tmp_path),
            window=None,
            force=True,
            keep_established=keep,
        )
        listing = fw.run(["nft", "list", "table", "inet", "ppsguard"]).stdout
        if not keep:
            assert outcome.kept_open == 0
            assert not _passes(inbound, inbound_peer, b"after-in")  # the defect: cut
            return
        assert outcome.kept_open == 2
        assert "established_before_apply4" in listing
        # the inbound packet goes first in both connections, as the one conntrack would miss
        assert _passes(inbound, inbound_peer, b"after-in")
        assert _passes(inbound_peer, inbound, b"after-in-reply")
        assert _passes(outbound_peer, outbound, b"after-out")
        assert _passes(outbound, outbound_peer, b"after-out-reply")
        # ...and the policy still holds for anything new
        assert probe(client, fw.ipv4, 7000, "tcp")[0] == "timeout"
        assert "7000" in fw.run(["conntrack", "-L"]).stdout  # tracked from now on
    finally:
        for sock in (inbound, inbound_peer, inbound_server, outbound, outbound_peer):
            sock.close()
        outbound_server.close()
