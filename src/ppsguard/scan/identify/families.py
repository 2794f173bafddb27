"""Protocol families and the mismatch rule: when is "found X where Y was expected" news? Pure.

A mismatch is reported only when BOTH sides are positive knowledge:
- the expectation names a protocol we know (the port's registry entry, else its well-known
  service); a port-table name we cannot identify (iprop on 2121, jupyter on 8888) claims nothing;
- the service was identified (a parsed handshake or a signature), as a protocol of another
  family. "unknown", a bare TLS wrapper (the protocol inside could be the expected one) and a
  port-number guess are never mismatches.
Names of one family describe the same door: HTTP on any web port, the TLS-wrapped variants
(https, imaps, smtps, ldaps), an HTTP API (Docker, Elasticsearch) where any web server may run.
It must not do I/O or know about probes.
"""

from __future__ import annotations

from ppsguard.model.scan import Confidence, Mismatch, ServiceInfo

_WEB = frozenset(
    {
        "http", "https", "http-alt", "https-alt", "http-proxy", "https-proxy", "www", "www-http",
        "webcache", "http-mgmt", "http-dev", "http-rpc", "websm", "squid", "tinyproxy",
        "docker", "docker-s", "kubernetes", "kubernetes-api", "kubelet", "etcd", "etcd-client",
        "etcd-server", "elasticsearch", "opensearch", "couchdb", "influxdb", "prometheus",
        "node-exporter", "grafana", "consul", "vault", "jenkins", "jupyter", "portainer",
        "webmin", "tomcat", "wap-wsp", "sun-sr-https", "pcsync-https", "sun-answerbook",
        "radan-http", "ddi-tcp-1", "xmpp-bosh", "alt-http", "oracle-http", "proxy",
    }
)  # fmt: skip

# canonical family name -> every name that describes it (ours, IANA's and /etc/services')
FAMILIES: dict[str, frozenset[str]] = {
    "http": _WEB,
    "dns": frozenset({"domain", "dns", "mdns", "dns-tcp"}),
    "rdp": frozenset({"ms-wbt-server", "rdp", "ms-term-serv"}),
    "smb": frozenset({"microsoft-ds", "smb", "netbios-ssn", "cifs"}),
    "postgresql": frozenset({"postgresql", "postgres"}),
    "imap": frozenset({"imap", "imaps", "imap2", "imap3"}),
    "pop3": frozenset({"pop3", "pop3s", "pop2"}),
    "smtp": frozenset({"smtp", "submission", "smtps", "submissions", "urd"}),
    "ldap": frozenset({"ldap", "ldaps", "globalcatldap", "globalcatldapssl", "msft-gc"}),
    "ftp": frozenset({"ftp", "ftps", "ftp-alt"}),
    "vnc": frozenset({"vnc", "rfb", "vnc-server", "vnc-http"}),
    "ssh": frozenset({"ssh"}),
    "telnet": frozenset({"telnet", "telnets"}),
    "memcached": frozenset({"memcached", "memcache"}),
    "mongodb": frozenset({"mongodb", "mongod"}),
    "snmp": frozenset({"snmp"}),
    "ntp": frozenset({"ntp"}),
    "mysql": frozenset({"mysql", "mariadb"}),
    "redis": frozenset({"redis"}),
    "rsync": frozenset({"rsync"}),
    "mqtt": frozenset({"mqtt", "secure-mqtt", "mqtts"}),
    "amqp": frozenset({"amqp", "amqps"}),
    "stomp": frozenset({"stomp", "stomps"}),
    "nats": frozenset({"nats"}),
    "kafka": frozenset({"kafka"}),
    "x11": frozenset({"x11"}),
    "zabbix": frozenset({"zabbix-agent", "zabbix-trapper", "zabbix"}),
    "openvpn": frozenset({"openvpn"}),
    "ike": frozenset({"ike", "isakmp"}),
    "rpcbind": frozenset({"rpcbind", "sunrpc", "portmapper"}),
    "cassandra": frozenset({"cassandra", "cql"}),
    "syslog": frozenset({"syslog"}),
    "echo": frozenset({"echo"}),
}
_FAMILY_OF: dict[str, str] = {name: family for family, names in FAMILIES.items() for name in names}
# found names that say nothing about the protocol inside (a wrapper) or nothing at all
_NOT_POSITIVE = frozenset({"", "unknown", "tls", "ssl"})


def family_of(name: str | None) -> str | None:
    """The canonical family of a service name, or None for a name we do not know."""
    if name is None:
        return None
    return _FAMILY_OF.get(name.lower())


def same_service(expected: str, found: str) -> bool:
    """True when the two names describe the same door (equal, or one family)."""
    if expected.lower() == found.lower():
        return True
    family = family_of(expected)
    return family is not None and family == family_of(found)


def mismatch(
    expected: str | None,
    found: ServiceInfo | str | None,
    *,
    source: str = "well-known port",
    evidence: str | None = None,
) -> Mismatch | None:
    """The Mismatch when `found` (a ServiceInfo or a bare name) positively contradicts
    `expected` (from `source`: "registry" or "well-known port"); None otherwise."""
    if expected is None or found is None:
        return None
    if isinstance(found, ServiceInfo):
        if found.confidence is Confidence.GUESSED:
            return None  # a port-number guess is no observation
        name = found.name or ""
    else:
        name = found
    if name.lower() in _NOT_POSITIVE or family_of(expected) is None:
        return None
    if same_service(expected, name):
        return None
    return Mismatch(expected, name, source=source, evidence=evidence)
