"""Writer of nmap's grepable format (`-oG`): one `Host:` line per host with its ports as
`port/state/protocol//service///`, and the count of closed/filtered ports as `Ignored State`."""

from __future__ import annotations

from ppsguard.model.scan import HostState, ScanResult
from ppsguard.version import __version__


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() and c not in "/,\t" else "_" for c in text)


def render_grepable(result: ScanResult) -> str:
    started = result.stats.started.strftime("%a %b %d %H:%M:%S %Y")
    lines = [
        f"# ppsguard {__version__} scan initiated {started} as: "
        f"{_clean(result.arguments or 'pps scan')}"
    ]
    up = 0
    for host in result.hosts:
        name = _clean(host.hostname or "")
        if host.address is None:  # a name that did not resolve: no Host: line without an address
            lines.append(f"# ppsguard: {name}: {_clean(host.error or 'no address')}")
            continue
        if host.error is not None:
            lines.append(
                f"Host: {host.address} ({name})\tStatus: Unknown\tError: {_clean(host.error)}"
            )
            continue
        status = "Up" if host.state is HostState.UP else "Down"
        lines.append(f"Host: {host.address} ({name})\tStatus: {status}")
        if host.state is not HostState.UP:
            continue
        up += 1
        items = []
        for p in host.ports:
            service = _clean(p.service.name) if p.service and p.service.name else ""
            version = ""
            if p.service and (p.service.product or p.service.version):
                version = _clean(" ".join(x for x in (p.service.product, p.service.version) if x))
            items.append(f"{p.port}/{p.state}/{p.protocol}//{service}//{version}/")
        listed = {str(p.state) for p in host.ports}
        ignored = [(s, n) for s, n in host.summary.items() if s not in listed and s != "open"]
        line = f"Host: {host.address} ({name})\tPorts: {', '.join(items)}"
        if ignored:
            state, count = max(ignored, key=lambda kv: kv[1])
            line += f"\tIgnored State: {state} ({count})"
        if host.flags:
            line += f"\tFlags: {','.join(host.flags)}"
        lines.append(line)
    total = sum(1 for h in result.hosts if h.error is None)
    lines.append(
        f"# ppsguard done -- {total} IP addresses ({up} hosts up) scanned in "
        f"{result.stats.elapsed_s:.2f} seconds"
    )
    return "\n".join(lines) + "\n"
