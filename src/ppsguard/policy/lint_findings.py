"""What `pps policy lint` reports: a finding's level, code, message, entries and example packet.

Kept apart from the analyses that produce findings (`policy.lint`, `policy.risks`) so that each
of them imports this module and not the other. Pure values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ppsguard.model.registry import SourceLocation


class FindingLevel(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class PacketExample:
    source: str
    port: int
    protocol: str
    destination: str | None = None

    def __str__(self) -> str:
        to = f" (to {self.destination})" if self.destination else ""
        return f"{self.source} -> {self.port}/{self.protocol}{to}"


@dataclass(frozen=True, slots=True)
class Finding:
    level: FindingLevel
    code: str
    message: str
    host: str | None
    entries: tuple[str, ...]
    location: SourceLocation
    example: PacketExample | None = None
