"""Use what people already have: load nmap XML (`-oX`) into our ScanResult.

`load_nmap_xml` parses `-oX` output with defusedxml (no DTDs, entities or external references:
hostile XML is refused, not expanded) and escapes every string it keeps. Running nmap is
`scan.nmap_run` (through the scope gate). We never read nmap's data files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import math
import xml.etree.ElementTree as ET
from collections import Counter

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ppsguard.errors import InputError
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import (
    Confidence,
    Evidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
    TlsInfo,
)
from ppsguard.scan.identify.escape import escape_text

MAX_NMAP_BYTES = 64 * 1024 * 1024  # what every reader of nmap XML files accepts


def _text(value: str | None, limit: int = 200) -> str | None:
    return escape_text(value, limit) if value else None


def _int(value: str | None, default: int = 0) -> int:
    """An ASCII decimal attribute (int() alone would take Arabic-Indic or full-width digits)."""
    if value is None:
        return default
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        return default
    return int(text)


def _start(root: ET.Element, source: str) -> dt.datetime:
    """The run's start (`start`, Unix seconds); refused when no calendar can hold it."""
    value = root.get("start")
    try:
        return dt.datetime.fromtimestamp(_int(value), dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise InputError(
            "nmaprun start is not a usable Unix time", file=source, token=value
        ) from None


def _elapsed(root: ET.Element) -> float:
    finished = root.find("runstats/finished")
    try:
        elapsed = float(finished.get("elapsed", "0")) if finished is not None else 0.0
    except ValueError:
        return 0.0
    return elapsed if math.isfinite(elapsed) and elapsed >= 0 else 0.0


def _service(element: ET.Element) -> ServiceInfo:
    name = _text(element.get("name"), 60)
    tunnel = element.get("tunnel")
    if tunnel == "ssl" and name == "http":
        name = "https"
    method = element.get("method")
    confidence = Confidence.GUESSED if method == "table" else Confidence.MATCHED
    fingerprint = element.get("servicefp")
    return ServiceInfo(
        name=name,
        product=_text(element.get("product"), 80),
        version=_text(element.get("version"), 80),
        extra=_text(element.get("extrainfo"), 120),
        cpe=tuple(t for t in (_text(c.text, 120) for c in element.findall("cpe")) if t),
        confidence=confidence,
        tls=TlsInfo(version="unknown", cipher="unknown") if tunnel == "ssl" else None,
        evidence=Evidence("nmap -sV", _text(fingerprint, 256)) if fingerprint else None,
    )


def _port(element: ET.Element, source: str) -> PortResult | None:
    try:
        protocol = Protocol(element.get("protocol", "tcp"))
    except ValueError:
        return None
    number = _int(element.get("portid"), -1)
    if not 0 <= number <= 65535:
        raise InputError("port number out of range", file=source, token=str(element.get("portid")))
    state_element = element.find("state")
    if state_element is None:
        return None
    try:
        state = PortState(state_element.get("state", ""))
    except ValueError:
        return None
    try:
        reason = Reason(state_element.get("reason", "unknown"))
    except ValueError:
        reason = Reason.UNKNOWN
    service_element = element.find("service")
    ttl = state_element.get("reason_ttl")
    return PortResult(
        port=number,
        protocol=protocol,
        state=state,
        reason=reason,
        service=_service(service_element) if service_element is not None else None,
        reason_ttl=_int(ttl) if ttl is not None else None,
    )


def _host(element: ET.Element, source: str) -> HostResult | None:
    address: IPAddress | None = None
    for item in element.findall("address"):
        if item.get("addrtype") in ("ipv4", "ipv6"):
            try:
                address = ipaddress.ip_address(item.get("addr", ""))
            except ValueError as error:
                raise InputError("bad host address", file=source, token=item.get("addr")) from error
            break
    if address is None:
        return None
    status = element.find("status")
    try:
        state = HostState(status.get("state", "unknown") if status is not None else "unknown")
    except ValueError:
        state = HostState.UNKNOWN
    reason: Reason | None = None
    if status is not None:
        with contextlib.suppress(ValueError):  # a reason name we do not know: none
            reason = Reason(status.get("reason", ""))
    name_element = element.find("hostnames/hostname")
    ports = tuple(
        p for p in (_port(e, source) for e in element.findall("ports/port")) if p is not None
    )
    summary: Counter[str] = Counter(str(p.state) for p in ports)
    for extra in element.findall("ports/extraports"):
        summary[extra.get("state", "unknown")] += _int(extra.get("count"))
    return HostResult(
        address=address,
        hostname=_text(name_element.get("name"), 253) if name_element is not None else None,
        state=state,
        ports=ports,
        summary=dict(summary),
        reason=reason,
    )


def load_nmap_xml(text: str, source: str) -> ScanResult:
    """Parse nmap XML (`-oX`). Bad or hostile XML raises InputError naming `source`:line:column."""
    if len(text) > MAX_NMAP_BYTES:
        raise InputError(f"nmap XML larger than {MAX_NMAP_BYTES:,} characters", file=source)
    try:
        root = SafeET.fromstring(text)  # DTDs allowed (nmap writes one); entities refused
    except ET.ParseError as error:
        line, column = getattr(error, "position", (None, None))
        raise InputError(
            f"not well-formed XML: {error.msg}", file=source, line=line, column=column
        ) from None
    except DefusedXmlException as error:
        raise InputError(f"refused unsafe XML ({type(error).__name__})", file=source) from None
    if root.tag != "nmaprun":
        raise InputError("not an nmap XML result", file=source, token=root.tag[:40])
    started = _start(root, source)
    elapsed = _elapsed(root)
    scan_types = {e.get("type") for e in root.findall("scaninfo")}
    engine = "syn" if "syn" in scan_types else "connect" if "connect" in scan_types else "nmap"
    hosts = tuple(h for h in (_host(e, source) for e in root.findall("host")) if h is not None)
    return ScanResult(
        hosts=hosts,
        stats=ScanStats(started, elapsed, probes_sent=0, retransmissions=0, seed=0),
        engine=engine,
        arguments=_text(root.get("args"), 1000) or "",
    )
