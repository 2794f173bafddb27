"""Make bytes from untrusted servers safe to print: escape control characters and terminal
escape sequences, cap the length.

Everything a remote service sends passes through here before it reaches a terminal, a JSON
report or a log. Pure: bytes in, text out.
"""

from __future__ import annotations

DEFAULT_LIMIT = 256

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\"}


def escape_bytes(data: bytes, limit: int = DEFAULT_LIMIT) -> str:
    """Printable ASCII stays; everything else becomes `\\xNN` (or `\\r`, `\\n`, `\\t`, `\\\\`).

    >>> escape_bytes(b"SSH-2.0-x\\r\\n\\x1b]0;pwned\\x07")
    'SSH-2.0-x\\\\r\\\\n\\\\x1b]0;pwned\\\\x07'

    At most `limit` characters of escaped text; the rest is summarised as `...(+N bytes)`.
    """
    parts: list[str] = []
    size = 0
    used = 0
    for byte in data:
        named = _NAMED.get(byte)
        if named is not None:
            piece = named
        elif 0x20 <= byte < 0x7F:
            piece = chr(byte)
        else:
            piece = f"\\x{byte:02x}"
        if size + len(piece) > limit:
            break
        parts.append(piece)
        size += len(piece)
        used += 1
    if used < len(data):
        parts.append(f"...(+{len(data) - used} bytes)")
    return "".join(parts)


def escape_text(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """Escape a string taken from a response (a version, a header value) for display."""
    return escape_bytes(text.encode("utf-8", "surrogateescape"), limit)


def clean_field(raw: bytes, limit: int = 80) -> str | None:
    """A short field extracted from a response (product, version, extra): decoded as Latin-1,
    stripped, escaped and capped; None when empty."""
    text = raw.decode("latin-1").strip()
    if not text:
        return None
    return escape_bytes(text.encode("latin-1"), limit)
