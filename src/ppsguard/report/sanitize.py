"""The one terminal sanitizer: outside text made safe to show, and CSV cells made safe to open.

Everything that came from outside the program — process names and command lines, banners,
certificate fields, nmap XML values, registry text, file names — passes through `visible` before
it reaches a terminal (tables, panels, progress lines, errors, logs), and through `csv_cell`
before it reaches a CSV file. Rich markup is never interpreted on such text: the consoles of
`ppsguard.cli.output` are built with `markup=False`, and styled output is composed of `Text`
objects, so `[link=http://x]` prints literally.

`visible` shows every character that is not printable as its Python escape: ESC as `\\x1b`,
NUL as `\\x00`, a bidi override as `\\u202e`, a lone surrogate (an undecodable byte kept by
`surrogateescape`) as `\\udcff`, a newline as `\\n`. Printable text, including non-ASCII letters,
is unchanged, and the common case (all printable) costs one `str.isprintable` call.

Pure: values in, strings out. It must not decide where text goes, nor style it.
"""

from __future__ import annotations

FORMULA_LEADS = frozenset("=+-@\t\r")


def _escape(ch: str) -> str:
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: object, *, keep_newlines: bool = False) -> str:
    """`value` as text with every non-printable character shown as its escape.

    >>> visible("a\\x1b[8mb")
    'a\\\\x1b[8mb'
    >>> visible("line1\\nline2", keep_newlines=True)
    'line1\\nline2'
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    if keep_newlines:
        return "\n".join(visible(line) for line in text.split("\n"))
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: control characters visible, and a leading
    `=`, `+`, `-`, `@`, tab or CR (a formula to Excel and LibreOffice) prefixed with `'`.

    Numbers are written as they are (`-1` stays a number); only text is guarded.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else str(value)
    if text[:1] in FORMULA_LEADS:
        text = "'" + text
    return visible(text)


def _xml_legal(ch: str) -> bool:
    code = ord(ch)
    if code < 0x20:
        return ch in "\t\n\r"
    return not (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))


def xml_text(value: object) -> str:
    """Text that XML 1.0 can hold: characters it forbids (C0 controls but tab, newline and CR;
    lone surrogates; U+FFFE/U+FFFF) shown as their escapes, as `visible` shows them."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(ch if _xml_legal(ch) else _escape(ch) for ch in text)
