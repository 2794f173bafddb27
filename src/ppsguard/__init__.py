"""ppsguard: the guard of a machine's Ports, Protocols & Services — as a library.

    import ppsguard
    inventory = ppsguard.collect_sockets()                  # what is open here
    result = ppsguard.scan(["127.0.0.1"], "22,80")          # how it looks from outside
    registry = ppsguard.load_registry("registry.yaml")      # what should be open, for whom
    ppsguard.explain(registry, source="198.18.0.11", port=110)
    ppsguard.compile_policy(registry)                       # the nftables rule set
    ppsguard.apply_policy(registry, confirm_within=120)     # enforce it (root)
    ppsguard.audit_machine(registry).report                 # reality against the registry

The functions come from `ppsguard.api` and their home modules (see docs/library.md), each loaded
on first use, so that `import ppsguard` — and with it every `pps` command — stays fast.
`ppsguard.scan` is also the package of the scan engines: calling it runs a scan
(`ppsguard.api.scan`), and
`ppsguard.scan.scan` is the coroutine (`ppsguard.scan_async`). The command line lives in
`ppsguard.cli`, the documents in `ppsguard.report`, the pure model in `ppsguard.model`.
"""

from ppsguard.version import __version__

__all__ = [
    "InputError",
    "PpsError",
    "RuntimeFailure",
    "ScanOptions",
    "UsageError",
    "__version__",
    "apply_policy",
    "audit_machine",
    "collect_sockets",
    "compile_policy",
    "explain",
    "load_registry",
    "scan",
    "scan_async",
]

_FROM = {  # name -> (module, attribute there): each loaded on first use, and only it
    "InputError": ("ppsguard.errors", "InputError"),
    "PpsError": ("ppsguard.errors", "PpsError"),
    "RuntimeFailure": ("ppsguard.errors", "RuntimeFailure"),
    "UsageError": ("ppsguard.errors", "UsageError"),
    "ScanOptions": ("ppsguard.scan.options", "ScanOptions"),
    "apply_policy": ("ppsguard.api", "apply_policy"),
    "audit_machine": ("ppsguard.api", "audit_machine"),
    "collect_sockets": ("ppsguard.inventory.collect", "collect"),
    "compile_policy": ("ppsguard.api", "compile_policy"),
    "explain": ("ppsguard.api", "explain"),
    "load_registry": ("ppsguard.registry.load", "load_registry"),
    "scan_async": ("ppsguard.scan.engine", "scan"),
}

TYPE_CHECKING = False  # what type checkers see (mypy takes the name as true): without `typing`
if TYPE_CHECKING:  # at run time `scan` is the callable scan package, see ppsguard/scan
    from ppsguard.api import apply_policy, audit_machine, compile_policy, explain, scan
    from ppsguard.errors import InputError, PpsError, RuntimeFailure, UsageError
    from ppsguard.inventory.collect import collect as collect_sockets
    from ppsguard.registry.load import load_registry
    from ppsguard.scan.engine import scan as scan_async
    from ppsguard.scan.options import ScanOptions
del TYPE_CHECKING


def __getattr__(name: str) -> object:
    import importlib

    if name == "scan":  # the package, made callable in ppsguard/scan/__init__.py
        return importlib.import_module("ppsguard.scan")
    if name not in _FROM:
        raise AttributeError(f"module 'ppsguard' has no attribute {name!r}")
    module, attribute = _FROM[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
