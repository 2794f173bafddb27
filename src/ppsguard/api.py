"""The library's front door: what `import ppsguard` offers, one function per question.

    import ppsguard
    inventory = ppsguard.collect_sockets()                      # what is open here
    result = ppsguard.scan(["127.0.0.1"], "22,80")              # how it looks from outside
    result = await ppsguard.scan_async(["127.0.0.1"], "22,80")  # the same, inside a loop
    registry = ppsguard.load_registry("registry.yaml")          # what should be open
    ppsguard.explain(registry, source="198.18.0.11", port=110)  # would this be let in?
    ppsguard.compile_policy(registry, target="nftables")        # the firewall rule set
    ppsguard.apply_policy(registry, confirm_within=120)         # enforce it, with a rollback
    ppsguard.audit_machine(registry)                            # does reality match?

Functions take a loaded `Registry` or a path wherever they need one, and plain strings or
`ipaddress` objects for addresses. Errors are `ppsguard.errors` (`InputError` for bad input,
`RuntimeFailure` when the machine fails us). Every function is the one the `pps` command uses, so
the library and the command cannot drift; this module only adapts their arguments. docs/library.md
shows each at work. Nothing here prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ppsguard.errors import UsageError
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.registry import Registry

if TYPE_CHECKING:
    from ppsguard.audit.machine import AuditRun
    from ppsguard.firewall.apply import ApplyOutcome
    from ppsguard.firewall.render import Rendered
    from ppsguard.policy.evaluate import Explanation

RegistryLike = Registry | str | Path

# The functions defined here; `import ppsguard` also offers collect_sockets, load_registry,
# scan_async and ScanOptions straight from their home modules (see ppsguard/__init__.py), so
# that loading a registry does not load the scan engines.
__all__ = ["apply_policy", "audit_machine", "compile_policy", "explain", "scan"]


if TYPE_CHECKING:  # type checkers see scan_sync's exact signature
    from ppsguard.scan.engine import scan_sync as scan
else:

    def scan(*args: Any, **kwargs: Any) -> Any:
        """Scan `targets` on `ports` and return the `ScanResult` (blocks until done): the scan
        package's `scan_sync`, with the arguments of `scan_async` (`ppsguard.scan.scan`)."""
        from ppsguard.scan.engine import scan_sync

        return scan_sync(*args, **kwargs)


def _registry(registry: RegistryLike) -> Registry:
    from ppsguard.registry.load import load_registry

    return registry if isinstance(registry, Registry) else load_registry(registry)


def _address(value: str | IPAddress, what: str) -> IPAddress:
    import ipaddress

    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise UsageError(f"{what} needs an IPv4 or IPv6 address", token=value) from None


def _protocol(value: Protocol | str) -> Protocol:
    try:
        return Protocol(value)
    except ValueError:
        known = ", ".join(p.value for p in Protocol)
        raise UsageError("unknown protocol", token=str(value), hint=f"one of {known}") from None


def explain(
    registry: RegistryLike,
    *,
    source: str | IPAddress,
    port: int,
    protocol: Protocol | str = Protocol.TCP,
    host: str | None = None,
    destination: str | IPAddress | None = None,
) -> Explanation:
    """Would `source` reach `port`/`protocol` on `host`? The verdict, logging, deciding entry."""
    from ppsguard.policy.compile import compile_host_policy
    from ppsguard.policy.evaluate import explain as explain_attempt

    loaded = _registry(registry)
    return explain_attempt(
        loaded,
        compile_host_policy(loaded, host),
        source=_address(source, "source"),
        port=port,
        protocol=_protocol(protocol),
        destination=None if destination is None else _address(destination, "destination"),
    )


def compile_policy(
    registry: RegistryLike,
    host: str | None = None,
    *,
    target: str = "nftables",
    log_group: int = 5,
) -> Rendered:
    """The firewall rule set for one host: `rendered.files` (one for nftables, v4+v6 iptables)."""
    from ppsguard.firewall.render import RenderOptions, renderer
    from ppsguard.policy.compile import compile_host_policy

    policy = compile_host_policy(_registry(registry), host)
    return renderer(target).render(policy, RenderOptions(log_group=log_group))


def apply_policy(
    registry: RegistryLike,
    host: str | None = None,
    *,
    netns: str | None = None,
    confirm_within: float | None = 120.0,
    force: bool = False,
    log_group: int = 5,
) -> ApplyOutcome:
    """Load the host's nftables table atomically; without `confirm` in time, it rolls back.

    Needs root. `ppsguard.firewall.apply.apply_policy` does the work, as for `pps policy apply`:
    the watchdog is armed before the load, and a rule set that would cut the SSH session this
    runs over is refused (UsageError) unless `force`. `confirm_within=None` (or 0) applies with
    no rollback window. Confirm with `ppsguard.firewall.apply.confirm(StateDir.for_netns(netns))`
    or `pps policy confirm`; `outcome.warnings` says what could not be checked.
    """
    from ppsguard.firewall.apply import apply_policy as apply_host_policy
    from ppsguard.firewall.nft import Runner
    from ppsguard.firewall.statedir import StateDir
    from ppsguard.policy.compile import compile_host_policy

    loaded = _registry(registry)
    policy = compile_host_policy(loaded, host)
    return apply_host_policy(
        policy,
        runner=Runner(netns=netns),
        state=StateDir.for_netns(netns),
        window=confirm_within or None,
        log_group=log_group,
        force=force,
        details={"registry": loaded.files[0] if loaded.files else "", "host": policy.host},
    )


def audit_machine(
    registry: RegistryLike | None = None,
    *,
    host: str | None = None,
    netns: str | None = None,
    scan: bool = False,
    scan_from: str | None = None,
    nmap_file: str | Path | None = None,
    identify: bool = True,
) -> AuditRun:
    """Audit this machine (or `netns`) against the registry: `run.report` holds the findings.

    `scan` also looks from outside (a scan of the host's own addresses); `scan_from` scans from
    another network namespace; `nmap_file` uses an nmap XML file as the outside view.
    """
    from ppsguard.audit.machine import audit_machine as audit

    return audit(
        registry if registry is None or isinstance(registry, Registry) else Path(registry),
        host=host,
        netns=netns,
        scan=scan,
        scan_from=scan_from,
        nmap_file=None if nmap_file is None else Path(nmap_file),
        identify=identify,
    )
