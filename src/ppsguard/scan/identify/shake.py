"""The Handshake record every protocol parser returns. Pure data; no parsing, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a protocol's own handshake bytes proved: the service, and what they reveal."""

    service: str
    product: str | None = None
    version: str | None = None
    extra: str | None = None
