"""Service signatures as data: the loader and the matcher. Pure (no network).

Signatures live in `data/signatures/<family>.toml`, one file per protocol family, written by us.
Each `[[signature]]` has:

- `id`: unique name; `service`: the service name it identifies (lower case, e.g. "http");
- `probes`: the probe names whose responses it applies to (`["*"]` for any);
- `ports` (optional): the only ports it applies to, for a reply too generic to name the service
  anywhere else (a kubelet's 401/404 is any Go web server's); without a known port it never
  applies;
- `pattern`: a Python regular expression matched against the raw response (as Latin-1 bytes);
- `product`, `version`, `extra`, `cpe`: templates where `$1`..`$9` are the pattern's groups;
- `[[signature.sample]]`: sample responses (`response` with Python escapes, or `response_hex`),
  the `port` it came from (default: the signature's first port) and the `expect`ed
  identification; the test suite generates one test per sample.

The first signature (in file order, files in name order) that matches wins.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from ppsguard.errors import InputError
from ppsguard.scan.identify.escape import clean_field

_GROUP = re.compile(r"\$(\d)")


@dataclass(frozen=True, slots=True)
class Sample:
    probe: str
    response: bytes
    expect: dict[str, object]
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    id: str
    service: str
    probes: tuple[str, ...]
    pattern: re.Pattern[bytes]
    product: str | None = None
    version: str | None = None
    extra: str | None = None
    cpe: tuple[str, ...] = ()
    samples: tuple[Sample, ...] = field(default=(), compare=False)
    source: str = ""
    ports: tuple[int, ...] = ()

    def applies_to(self, probe: str, port: int | None = None) -> bool:
        if self.ports and port not in self.ports:
            return False
        return "*" in self.probes or probe in self.probes


@dataclass(frozen=True, slots=True)
class Match:
    """A signature's verdict on one response (fields already escaped and capped)."""

    signature: str
    service: str
    product: str | None
    version: str | None
    extra: str | None
    cpe: tuple[str, ...]


def decode_escaped(text: str) -> bytes:
    """Python-style escapes (`\\r`, `\\n`, `\\xNN`, `\\\\`) in a sample to bytes."""
    raw = text.encode("latin-1", "backslashreplace")
    return raw.decode("unicode_escape").encode("latin-1")


def _fill(template: str | None, match: re.Match[bytes]) -> str | None:
    if template is None:
        return None

    def group(found: re.Match[str]) -> str:
        index = int(found.group(1))
        if index > (match.re.groups or 0):
            return ""
        value = match.group(index)
        return value.decode("latin-1") if value is not None else ""

    filled = _GROUP.sub(group, template)
    return clean_field(filled.encode("latin-1", "replace"))


def parse_signatures(text: str, source: str) -> list[Signature]:
    """Parse one signature file's text. Bad input raises InputError naming the file and entry."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(str(error), file=source) from error
    entries = document.get("signature", [])
    if not isinstance(entries, list):
        raise InputError("'signature' must be an array of tables", file=source)
    result: list[Signature] = []
    for number, entry in enumerate(entries, start=1):
        where = f"signature #{number}"
        try:
            sig_id = str(entry["id"])
            pattern = re.compile(str(entry["pattern"]).encode("latin-1"))
            ports = tuple(int(port) for port in entry.get("ports", ()))
            samples = tuple(
                Sample(
                    probe=str(sample.get("probe", entry.get("probes", ["null"])[0])),
                    response=(
                        bytes.fromhex(sample["response_hex"])
                        if "response_hex" in sample
                        else decode_escaped(str(sample["response"]))
                    ),
                    expect=dict(sample["expect"]),
                    port=int(sample["port"]) if "port" in sample else (ports or (None,))[0],
                )
                for sample in entry.get("sample", [])
            )
            result.append(
                Signature(
                    id=sig_id,
                    service=str(entry["service"]),
                    probes=tuple(str(p) for p in entry.get("probes", ["*"])),
                    pattern=pattern,
                    product=entry.get("product"),
                    version=entry.get("version"),
                    extra=entry.get("extra"),
                    cpe=tuple(str(c) for c in entry.get("cpe", ())),
                    samples=samples,
                    source=source,
                    ports=ports,
                )
            )
        except KeyError as error:
            raise InputError(
                f"{where}: missing key {error}", file=source, token=str(error)
            ) from error
        except (re.error, ValueError, TypeError, UnicodeError) as error:
            raise InputError(f"{where}: {error}", file=source) from error
    return result


_CACHE: list[Signature] = []


def builtin_signatures() -> list[Signature]:
    """All signatures shipped in `data/signatures/`, files in name order (loaded once)."""
    if not _CACHE:
        folder = resources.files("ppsguard.scan.identify").joinpath("data/signatures")
        files = sorted(
            (f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name
        )
        for file in files:
            _CACHE.extend(parse_signatures(file.read_text("utf-8"), f"signatures/{file.name}"))
    return _CACHE


def match(
    probe: str,
    response: bytes,
    signatures: list[Signature] | None = None,
    *,
    service: str | None = None,
    port: int | None = None,
) -> Match | None:
    """The first signature that applies to `probe` (on `port`, when known) and matches
    `response` (only signatures for `service` when given)."""
    for signature in builtin_signatures() if signatures is None else signatures:
        if not signature.applies_to(probe, port) or (service and signature.service != service):
            continue
        found = signature.pattern.search(response)
        if found is None:
            continue
        cpe = tuple(c for c in (_fill(t, found) for t in signature.cpe) if c)
        return Match(
            signature=signature.id,
            service=signature.service,
            product=_fill(signature.product, found),
            version=_fill(signature.version, found),
            extra=_fill(signature.extra, found),
            cpe=tuple(c.rstrip(":") for c in cpe),
        )
    return None
