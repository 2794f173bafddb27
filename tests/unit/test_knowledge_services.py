"""Service catalog: our data file, the /etc/services parser, merging and lookups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.knowledge.services import (
    ServiceCatalog,
    ServiceEntry,
    builtin_catalog,
    default_catalog,
    load_builtin_entries,
    merge_catalogs,
    parse_etc_services,
    parse_services_toml,
    service_name,
)
from ppsguard.model.net import Protocol

TCP, UDP = Protocol.TCP, Protocol.UDP


def test_builtin_catalog_has_at_least_300_port_protocol_pairs() -> None:
    pairs = builtin_catalog().pairs()
    assert len(pairs) >= 300
    assert {proto for _, proto in pairs} == {TCP, UDP}


def test_data_file_has_provenance_note() -> None:
    from importlib import resources

    text = resources.files("ppsguard.knowledge").joinpath("data/services.toml").read_text()
    assert "provenance" in text.split("services = [")[0]
    assert "IANA" in text and "CC0" in text


@pytest.mark.parametrize(
    ("port", "protocol", "name"),
    [
        (22, TCP, "ssh"),
        (23, TCP, "telnet"),
        (25, TCP, "smtp"),
        (53, TCP, "dns"),
        (53, UDP, "dns"),
        (69, UDP, "tftp"),
        (123, UDP, "ntp"),
        (161, UDP, "snmp"),
        (445, TCP, "smb"),
        (514, TCP, "rsh"),
        (514, UDP, "syslog"),
        (1433, TCP, "mssql"),
        (1521, TCP, "oracle"),
        (2049, TCP, "nfs"),
        (2181, TCP, "zookeeper"),
        (2375, TCP, "docker"),
        (2376, TCP, "docker-s"),
        (2379, TCP, "etcd-client"),
        (2380, TCP, "etcd-server"),
        (3000, TCP, "grafana"),
        (3306, TCP, "mysql"),
        (3389, TCP, "rdp"),
        (4646, TCP, "nomad"),
        (5432, TCP, "postgresql"),
        (5672, TCP, "amqp"),
        (5900, TCP, "vnc"),
        (5903, TCP, "vnc"),
        (5985, TCP, "winrm"),
        (5986, TCP, "winrm-https"),
        (6000, TCP, "x11"),
        (6007, TCP, "x11"),
        (6379, TCP, "redis"),
        (6443, TCP, "kubernetes-api"),
        (8086, TCP, "influxdb"),
        (8123, TCP, "clickhouse-http"),
        (8200, TCP, "vault"),
        (8500, TCP, "consul"),
        (9000, TCP, "minio"),
        (9042, TCP, "cassandra"),
        (9090, TCP, "prometheus"),
        (9092, TCP, "kafka"),
        (9100, TCP, "node-exporter"),
        (9200, TCP, "elasticsearch"),
        (9300, TCP, "elasticsearch-transport"),
        (10250, TCP, "kubelet"),
        (10255, TCP, "kubelet-readonly"),
        (10256, TCP, "kube-proxy-health"),
        (10257, TCP, "kube-controller-manager"),
        (10259, TCP, "kube-scheduler"),
        (11211, TCP, "memcached"),
        (15672, TCP, "rabbitmq-management"),
        (27017, TCP, "mongodb"),
        (5984, TCP, "couchdb"),
    ],
)
def test_primary_names(port: int, protocol: Protocol, name: str) -> None:
    assert builtin_catalog().primary_name(port, protocol) == name
    assert builtin_catalog().names_for(port, protocol)[0] == name


def test_names_for_lists_primary_then_aliases_then_other_services() -> None:
    names = builtin_catalog().names_for(9000, TCP)
    assert names[:2] == ("minio", "s3")
    assert "clickhouse-native" in names and "php-fpm" in names
    assert builtin_catalog().names_for(50000, TCP) == ()
    assert builtin_catalog().primary_name(50000, UDP) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mysql", {(3306, TCP), (3306, UDP)}),
        ("MySQL", {(3306, TCP), (3306, UDP)}),
        ("mariadb", {(3306, TCP), (3306, UDP)}),
        ("domain", {(53, TCP), (53, UDP)}),
        ("microsoft-ds", {(445, TCP)}),
        ("rpcbind", {(111, TCP), (111, UDP)}),
        ("portmapper", {(111, TCP), (111, UDP)}),
        ("x11", {(p, TCP) for p in range(6000, 6008)}),
        ("etcd", {(2379, TCP)}),
        ("kube-apiserver", {(6443, TCP)}),
        ("nosuchservice", set()),
    ],
)
def test_ports_for_by_name_and_alias(name: str, expected: set[tuple[int, Protocol]]) -> None:
    assert {(e.port, e.protocol) for e in builtin_catalog().ports_for(name)} == expected


def test_ports_for_is_sorted() -> None:
    entries = builtin_catalog().ports_for("vnc")
    assert [e.port for e in entries] == sorted(e.port for e in entries)


def test_service_name_convenience() -> None:
    assert service_name(22, "tcp") == "ssh"
    assert service_name(22, Protocol.TCP) == "ssh"
    assert service_name(22, "TCP") == "ssh"
    assert service_name(50000, "tcp") is None
    assert service_name(22, "bogus") is None


ETC_SAMPLE = """\
# Network services, Internet style
tcpmux		1/tcp				# TCP port service multiplexer
ssh		22/tcp				# SSH Remote Login Protocol
smtp		25/tcp		mail
domain		53/tcp				# Domain Name Server
domain		53/udp
sunrpc		111/tcp		portmapper	# RPC 4.0 portmapper
fancy		4242/udp	fancy-alias other.alias
broken		notaport/tcp
alsobroken	70000/tcp
weirdproto	80/ddp
justname
"""


def test_parse_etc_services_known_lines() -> None:
    entries = parse_etc_services(ETC_SAMPLE)
    got = {(e.name, e.port, e.protocol) for e in entries}
    assert got == {
        ("tcpmux", 1, TCP),
        ("ssh", 22, TCP),
        ("smtp", 25, TCP),
        ("domain", 53, TCP),
        ("domain", 53, UDP),
        ("sunrpc", 111, TCP),
        ("fancy", 4242, UDP),
    }
    by_name = {e.name: e for e in entries}
    assert by_name["smtp"].aliases == ("mail",)
    assert by_name["sunrpc"].aliases == ("portmapper",)
    assert by_name["sunrpc"].description == "RPC 4.0 portmapper"
    assert by_name["fancy"].aliases == ("fancy-alias", "other.alias")


@given(st.text(max_size=400))
def test_parse_etc_services_never_crashes(text: str) -> None:
    for entry in parse_etc_services(text):
        assert 0 <= entry.port <= 65535
        assert entry.protocol in (Protocol.TCP, Protocol.UDP, Protocol.SCTP)


@given(
    name=st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
    port=st.integers(0, 65535),
    proto=st.sampled_from(["tcp", "udp"]),
    aliases=st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), max_size=3),
)
def test_parse_etc_services_roundtrip(name: str, port: int, proto: str, aliases: list[str]) -> None:
    line = "\t".join([name, f"{port}/{proto}", *aliases]) + "  # note\n"
    (entry,) = parse_etc_services(line)
    assert (entry.name, entry.port, entry.protocol, entry.aliases) == (
        name,
        port,
        Protocol(proto),
        tuple(aliases),
    )


def test_merge_ours_wins_and_theirs_fills_gaps() -> None:
    ours = [ServiceEntry("dns", 53, UDP, ("domain",), "ours"), ServiceEntry("ssh", 22, TCP)]
    theirs = parse_etc_services(
        "domain 53/udp\nssh 2222/tcp\nnewthing 4242/tcp nt\nextra 22/tcp ssh-alt\n"
    )
    catalog = merge_catalogs(ours, theirs)
    # Ours first, theirs only under names we do not define.
    assert catalog.names_for(53, UDP) == ("dns", "domain")
    assert [(e.port, e.protocol) for e in catalog.ports_for("ssh")] == [(22, TCP)]
    assert catalog.names_for(22, TCP) == ("ssh", "extra", "ssh-alt")
    assert catalog.primary_name(4242, TCP) == "newthing"
    assert [e.port for e in catalog.ports_for("NT")] == [4242]


def test_default_catalog_contains_builtin_and_is_cached() -> None:
    catalog = default_catalog()
    assert catalog is default_catalog()
    assert builtin_catalog().pairs() <= catalog.pairs()
    assert catalog.primary_name(3306, TCP) == "mysql"


def test_builtin_entries_are_well_formed() -> None:
    for entry in load_builtin_entries():
        assert entry.name and entry.description, entry
        assert entry.name.lower() == entry.name
        assert entry.name not in entry.aliases


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services = 3", "missing 'services'"),
        ("nothing = 1", "missing 'services'"),
        ("services = [ { name = 'x' } ]", "no ports"),
        ("services = [ { name = 'x', tcp = [70000] } ]", "bad port range"),
        ("services = [ { name = 'x', tcp = ['1-100'] } ]", "bad port range"),
        ("services = [ { name = 'x', tcp = ['abc'] } ]", "bad port"),
        ("services = [ { name = 'x y', tcp = [1] } ]", "bad service name"),
        ("services = [ { name = 'x', tcp = [1], colour = 'red' } ]", "unknown keys"),
        ("services = [ { name = 'x', tcp = [1], aliases = [1] } ]", "bad aliases"),
        ("services = [", "invalid TOML"),
    ],
)
def test_parse_services_toml_rejects_bad_data(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_services_toml(text)


def test_parse_services_toml_expands_ranges() -> None:
    entries = parse_services_toml(
        "services = [ { name = 'x11', tcp = ['6000-6002'], udp = [7], aliases = ['x'] } ]"
    )
    assert [(e.port, e.protocol) for e in entries] == [
        (6000, TCP),
        (6001, TCP),
        (6002, TCP),
        (7, UDP),
    ]
    catalog = ServiceCatalog(entries)
    assert len(catalog) == 4 and catalog.names_for(6001, TCP) == ("x11", "x")
