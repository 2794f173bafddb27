"""Turn one probe's response into a ServiceInfo, and decide protocol mismatches. Pure.

A parsed handshake makes the identification `confirmed`; a signature alone makes it `matched`;
the signature, when it matches too, supplies the product, version, CPE and a more specific name
(an HTTP API such as Docker or Elasticsearch).
"""

from __future__ import annotations

from ppsguard.model.scan import Confidence, Mismatch, ServiceInfo
from ppsguard.scan.identify import handshakes, signatures

# Names that describe the same door: finding one where another is expected is no mismatch.
_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "http",
            "https",
            "http-alt",
            "http-proxy",
            "https-alt",
            "www",
            "www-http",
            "webcache",
            "http-mgmt",
            "docker",
            "docker-s",
            "kubernetes",
            "kubelet",
            "etcd",
            "etcd-client",
            "etcd-server",
            "elasticsearch",
            "prometheus",
            "wap-wsp",
            "sun-sr-https",
            "pcsync-https",
            "tls",
            "kubernetes-api",
            "node-exporter",
            "grafana",
            "consul",
            "vault",
            "jenkins",
        }
    ),
    frozenset({"domain", "dns", "mdns", "dns-tcp"}),
    frozenset({"ms-wbt-server", "rdp", "ms-term-serv"}),
    frozenset({"microsoft-ds", "smb", "netbios-ssn", "cifs"}),
    frozenset({"postgresql", "postgres"}),
    frozenset({"imap", "imaps", "imap2", "imap3", "tls"}),
    frozenset({"pop3", "pop3s", "tls"}),
    frozenset({"smtp", "submission", "smtps", "submissions", "urd", "tls"}),
    frozenset({"ldap", "ldaps", "tls"}),
    frozenset({"ftp", "ftps", "tls"}),
    frozenset({"vnc", "rfb", "vnc-server"}),
    frozenset({"ssh"}),
    frozenset({"memcached", "memcache"}),
    frozenset({"mongodb", "mongod"}),
    frozenset({"snmp"}),
    frozenset({"ntp"}),
    frozenset({"mysql", "mariadb"}),
)


def same_service(expected: str, found: str) -> bool:
    if expected == found:
        return True
    return any(expected in family and found in family for family in _FAMILIES)


def mismatch(expected: str | None, found: str | None) -> Mismatch | None:
    """`Mismatch(expected, found)` when the port suggests a different service than was found.
    `found=None` means the service answered something we could not name ("unknown")."""
    if expected is None:
        return None
    shown = found if found is not None else "unknown"
    return None if same_service(expected, shown) else Mismatch(expected, shown)


ECHO_MIN_BYTES = 4


def is_echo(payload: bytes, data: bytes) -> bool:
    """True when `data` is our own probe reflected back (an echo service), not an answer."""
    if len(payload) < ECHO_MIN_BYTES or len(data) < ECHO_MIN_BYTES:
        return False
    shared = min(len(payload), len(data))
    return data[:shared] == payload[:shared]


def interpret(
    probe: str, data: bytes, *, tls: bool = False, payload: bytes = b""
) -> ServiceInfo | None:
    """What `data`, received in answer to `probe` (inside TLS if `tls`), says the service is.

    A reply that merely reflects the probe's own bytes (`payload`) is an echo service: its
    bytes would otherwise "confirm" whatever protocol the probe spoke.
    """
    if not data:
        return None
    if is_echo(payload, data):
        return ServiceInfo(
            name="echo", extra="reflects the bytes it receives", confidence=Confidence.MATCHED
        )
    shake = handshakes.parse(probe, data)
    sig = signatures.match(probe, data)
    if shake is None and sig is None:
        return None
    name = sig.service if sig is not None else shake.service if shake is not None else None
    if shake is not None and sig is not None and not same_service(shake.service, sig.service):
        name = shake.service  # the handshake is proof; a signature cannot contradict it
        sig = None
    product = (sig.product if sig else None) or (shake.product if shake else None)
    version = (sig.version if sig else None) or (shake.version if shake else None)
    extras = [e for e in ((shake.extra if shake else None), (sig.extra if sig else None)) if e]
    if tls and name == "http":
        name = "https"
    return ServiceInfo(
        name=name,
        product=product,
        version=version,
        extra="; ".join(extras) or None,
        cpe=sig.cpe if sig else (),
        confidence=Confidence.CONFIRMED if shake is not None else Confidence.MATCHED,
    )
