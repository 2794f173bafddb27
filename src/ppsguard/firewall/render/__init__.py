"""Firewall renderers: a registry of targets, each turning a HostPolicy into loadable text.

    TARGETS = {"nftables": NftablesRenderer(), "iptables": IptablesRenderer()}

`renderer(name)` returns one or raises UsageError naming the known targets. Every renderer refuses
(UnsupportedFeature) what it cannot express instead of compiling half a policy.
"""

from __future__ import annotations

from ppsguard.errors import UsageError
from ppsguard.firewall.render.base import (
    Feature,
    Rendered,
    RenderedFile,
    Renderer,
    RenderOptions,
    UnsupportedFeature,
)
from ppsguard.firewall.render.iptables import IptablesRenderer
from ppsguard.firewall.render.nftables import NftablesRenderer

TARGETS: dict[str, Renderer] = {
    "nftables": NftablesRenderer(),
    "iptables": IptablesRenderer(),
}


def renderer(name: str) -> Renderer:
    """The renderer called `name`."""
    found = TARGETS.get(name)
    if found is None:
        raise UsageError(
            f"unknown target {name!r}", token=name, hint="targets: " + ", ".join(sorted(TARGETS))
        )
    return found


__all__ = [
    "TARGETS",
    "Feature",
    "IptablesRenderer",
    "NftablesRenderer",
    "RenderOptions",
    "Rendered",
    "RenderedFile",
    "Renderer",
    "UnsupportedFeature",
    "renderer",
]
