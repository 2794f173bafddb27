"""Turn one probe's response into a ServiceInfo (mismatch rules live in families.py). Pure.

A parsed handshake makes the identification `confirmed`; a signature alone makes it `matched`;
the signature, when it matches too, supplies the product, version, CPE and a more specific name
(an HTTP API such as Docker or Elasticsearch).
"""

from __future__ import annotations

from ppsguard.model.scan import Confidence, Mismatch, ServiceInfo
from ppsguard.scan.identify import families, handshakes, signatures

same_service = families.same_service  # kept here for callers that name it classify.same_service


def mismatch(expected: str | None, found: str | None) -> Mismatch | None:
    """`Mismatch(expected, found)` when a positively named service contradicts the port's
    expected one; "unknown" (`found=None`) never does. See `families.mismatch`."""
    return families.mismatch(expected, found)


ECHO_MIN_BYTES = 4


def is_echo(payload: bytes, data: bytes) -> bool:
    """True when `data` is our own probe reflected back (an echo service), not an answer."""
    if len(payload) < ECHO_MIN_BYTES or len(data) < ECHO_MIN_BYTES:
        return False
    shared = min(len(payload), len(data))
    return data[:shared] == payload[:shared]


def interpret(
    probe: str, data: bytes, *, tls: bool = False, payload: bytes = b"", port: int | None = None
) -> ServiceInfo | None:
    """What `data`, received in answer to `probe` (inside TLS if `tls`) on `port`, says the
    service is.

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
    sig = signatures.match(probe, data, port=port)
    if shake is None and sig is None:
        return None
    name = sig.service if sig is not None else shake.service if shake is not None else None
    if shake is not None and sig is not None and not same_service(shake.service, sig.service):
        name = shake.service  # the handshake is proof; a signature cannot contradict it
        sig = None
    proxied = shake is not None and shake.service == "http-proxy"
    if proxied and sig is not None and sig.service != "http-proxy":
        # the signature named the web server behind the proxy: ask the proxies' signatures
        name, sig = "http-proxy", signatures.match(probe, data, service="http-proxy", port=port)
    product = (sig.product if sig else None) or (shake.product if shake else None)
    version = (sig.version if sig else None) or (shake.version if shake else None)
    extras: list[str] = []
    for extra in ((shake.extra if shake else None), (sig.extra if sig else None)):
        if extra and not any(extra == kept or kept.endswith(f": {extra}") for kept in extras):
            extras.append(extra)  # one fact once (SNMP sysDescr from parser and signature)
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
