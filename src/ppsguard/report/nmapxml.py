"""Writer of nmap-compatible XML (`-oX`): the nmaprun/host/ports/port/state/service structure that
nmap's own `ndiff` and other nmap-XML consumers read. The reader is `ppsguard.scan.nmap_import`.

Closed/filtered ports that are not listed one by one become `<extraports>` with their counts, as
nmap does. Characters XML 1.0 forbids (a banner's ESC or NUL) are written as visible escapes.
Pure: `render_xml` returns the document at once and is the reference for the streaming writer
`report.nmapxml_stream`, which the command uses.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import Counter

from ppsguard.model.scan import Confidence, HostResult, HostState, PortResult, ScanResult
from ppsguard.report.sanitize import xml_text
from ppsguard.version import __version__

_SCAN_TYPE = {"syn": "syn", "connect": "connect", "udp": "udp"}
_CONF = {Confidence.CONFIRMED: "10", Confidence.MATCHED: "8", Confidence.GUESSED: "3"}


def _epoch(when: dt.datetime) -> str:
    return str(int(when.timestamp()))


def _service(parent: ET.Element, port: PortResult) -> None:
    svc = port.service
    if svc is None or not svc.name:
        return
    attrs = {"name": svc.name}
    for key, value in (
        ("product", svc.product),
        ("version", svc.version),
        ("extrainfo", svc.extra),
    ):
        if value:
            attrs[key] = value
    if svc.tls is not None:
        attrs["tunnel"] = "ssl"
    attrs["method"] = "table" if svc.confidence is Confidence.GUESSED else "probed"
    attrs["conf"] = _CONF[svc.confidence]
    elem = ET.SubElement(parent, "service", attrs)
    for cpe in svc.cpe:
        ET.SubElement(elem, "cpe").text = cpe


def _host(root: ET.Element, host: HostResult, start: str, end: str) -> None:
    if host.address is None:  # nmap writes no <host> for a name it cannot resolve; nor do we
        note = f" ppsguard: {host.hostname or '?'}: {host.error or 'no address'} "
        root.append(ET.Comment(note.replace("--", "- -")))
        return
    elem = ET.SubElement(root, "host", {"starttime": start, "endtime": end})
    reason = (
        str(host.reason)
        if host.reason is not None
        else ("user-set" if host.state is HostState.UP else "no-response")
    )
    ET.SubElement(elem, "status", {"state": str(host.state), "reason": reason, "reason_ttl": "0"})
    ET.SubElement(
        elem,
        "address",
        {"addr": str(host.address), "addrtype": "ipv6" if host.address.version == 6 else "ipv4"},
    )
    names = ET.SubElement(elem, "hostnames")
    if host.hostname:
        ET.SubElement(names, "hostname", {"name": host.hostname, "type": "user"})
    if host.state is not HostState.UP:
        return
    ports = ET.SubElement(elem, "ports")
    listed = Counter(str(p.state) for p in host.ports)
    for state, count in sorted(host.summary.items()):
        extra = count - listed.get(state, 0)
        if extra > 0 and state != "open":
            ET.SubElement(ports, "extraports", {"state": state, "count": str(extra)})
    for port in host.ports:
        pe = ET.SubElement(
            ports, "port", {"protocol": str(port.protocol), "portid": str(port.port)}
        )
        ET.SubElement(
            pe,
            "state",
            {
                "state": str(port.state),
                "reason": str(port.reason),
                "reason_ttl": str(port.reason_ttl or 0),
            },
        )
        _service(pe, port)


def render_xml(result: ScanResult) -> str:
    """The scan as nmap XML text."""
    started = result.stats.started
    finished = started + dt.timedelta(seconds=result.stats.elapsed_s)
    start, end = _epoch(started), _epoch(finished)
    root = ET.Element(
        "nmaprun",
        {
            "scanner": "ppsguard",
            "args": result.arguments or f"pps scan --{result.engine}",
            "start": start,
            "startstr": started.strftime("%a %b %d %H:%M:%S %Y"),
            "version": __version__,
            "xmloutputversion": "1.05",
        },
    )
    protocols = sorted({str(p.protocol) for h in result.hosts for p in h.ports}) or ["tcp"]
    for proto in protocols:
        ET.SubElement(
            root,
            "scaninfo",
            {
                "type": _SCAN_TYPE.get(result.engine, result.engine),
                "protocol": proto,
                "numservices": "0",
                "services": "",
            },
        )
    ET.SubElement(root, "verbose", {"level": "0"})
    ET.SubElement(root, "debugging", {"level": "0"})
    for host in result.hosts:
        if host.error is None or host.address is None:  # the latter: a comment, no <host>
            _host(root, host, start, end)
    up = sum(1 for h in result.hosts if h.state is HostState.UP)
    total = sum(1 for h in result.hosts if h.error is None)
    run = ET.SubElement(root, "runstats")
    ET.SubElement(
        run,
        "finished",
        {
            "time": end,
            "timestr": finished.strftime("%a %b %d %H:%M:%S %Y"),
            "elapsed": f"{result.stats.elapsed_s:.2f}",
            "summary": (
                f"ppsguard done: {total} IP addresses ({up} hosts up) scanned in "
                f"{result.stats.elapsed_s:.2f} seconds"
            ),
            "exit": "success",
        },
    )
    ET.SubElement(run, "hosts", {"up": str(up), "down": str(total - up), "total": str(total)})
    for element in root.iter():  # a banner's ESC or NUL would make the document invalid XML
        element.attrib = {k: xml_text(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = xml_text(element.text)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n{body}\n'
