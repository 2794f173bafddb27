"""A run's digest: SHA-256 over (kind, observed time, canonical document text).

The same document recorded or imported twice has the same digest, so it is one run. Pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib


def run_digest(kind: str, observed_at: dt.datetime | str, document_text: str) -> str:
    when = observed_at.isoformat() if isinstance(observed_at, dt.datetime) else str(observed_at)
    payload = f"{kind}\x1f{when}\x1f".encode() + document_text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(payload).hexdigest()
