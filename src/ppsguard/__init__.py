"""ppsguard: the guard of a machine's Ports, Protocols & Services.

Know what is open (`pps sockets`), see it from outside (`pps scan`), document it once (the PPS
registry), enforce it (`pps policy`), verify it (`pps audit`). The command line lives in
`ppsguard.cli`; the pure model in `ppsguard.model`; everything else is one package per layer.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
