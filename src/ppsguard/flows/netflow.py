"""NetFlow v5, v9 and IPFIX export packets as one-way flow records.

    decoder = NetflowDecoder()
    for record in decoder.decode(datagram, exporter="198.18.0.1", received=time.time()): ...

v5 has a fixed 48-byte record. v9 (RFC 3954) and IPFIX (RFC 7011) describe their records with
templates; templates are cached per (exporter, observation domain / source id, template id), as
collectors must, and data sets whose template is not known yet are counted (`no_template`) and
skipped. Fields used (IANA IPFIX information elements, the same numbers v9 uses): bytes (1, 85),
packets (2, 86), protocol (4), TCP flags (6), ports (7, 11), IPv4 (8, 12) and IPv6 (27, 28)
addresses, start/end as router uptime (22, 21) or absolute seconds / milliseconds (150/151,
152/153), and the sampling interval (34, 305; v5 from its header): packets and bytes are scaled
by it. Sequence numbers are checked per exporter and domain: a jump is evidence lost and is
counted in `gaps` and `missing` (v5 and IPFIX count records, v9 counts export packets).

Hostile exports: a length that overruns the datagram, a template with zero fields or a
zero-length field, more than `MAX_TEMPLATES` templates per exporter (a template flood): the
datagram or set is skipped and counted in `errors` / `template_drops`; nothing raises. Pure.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ppsguard.flows.stitch import OneWay

MAX_TEMPLATES = 4096
_V5_HEADER = struct.Struct("!HHIIIIBBH")
_V5_RECORD = struct.Struct("!4s4s4sHHIIIIHHBBBBHHBBH")
_V9_HEADER = struct.Struct("!HHIIII")
_IPFIX_HEADER = struct.Struct("!HHIII")
_SET = struct.Struct("!HH")

Template = tuple[tuple[int, int, int], ...]  # (element id, length, enterprise)


@dataclass(slots=True)
class NetflowStats:
    datagrams: int = 0
    records: int = 0
    errors: int = 0
    no_template: int = 0
    template_drops: int = 0
    gaps: int = 0
    missing: int = 0


@dataclass(slots=True)
class _Exporter:
    templates: dict[tuple[int, int], Template] = field(default_factory=dict)
    next_sequence: dict[int, int] = field(default_factory=dict)
    last_sequence: dict[int, int] = field(default_factory=dict)
    sampling: dict[int, int] = field(default_factory=dict)


def _number(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


class NetflowDecoder:
    def __init__(self) -> None:
        self.exporters: dict[str, _Exporter] = {}
        self.stats = NetflowStats()

    def _exporter(self, name: str) -> _Exporter:
        found = self.exporters.get(name)
        if found is None:
            found = self.exporters[name] = _Exporter()
        return found

    def _sequence(
        self,
        exporter: _Exporter,
        domain: int,
        sequence: int,
        advance: int,
        *,
        lenient: bool = False,
    ) -> None:
        """Count a gap when `sequence` is not the one expected. `lenient` (IPFIX) also accepts
        the previous sequence plus this message's records: some exporters (softflowd) count the
        records of the message itself, where RFC 7011 counts those sent before it."""
        expected = exporter.next_sequence.get(domain)
        previous = exporter.last_sequence.get(domain)
        post = None if previous is None else (previous + advance) % (1 << 32)
        if expected is not None and sequence != expected and not (lenient and sequence == post):
            self.stats.gaps += 1
            self.stats.missing += (sequence - expected) % (1 << 32)
        exporter.last_sequence[domain] = sequence
        exporter.next_sequence[domain] = (sequence + advance) % (1 << 32)

    def decode(self, data: bytes, exporter: str, received: float) -> Iterator[OneWay]:
        """The records of one export datagram (see the module docstring)."""
        self.stats.datagrams += 1
        if len(data) < 4:
            self.stats.errors += 1
            return
        version = _SET.unpack_from(data, 0)[0]
        try:
            if version == 5:
                yield from self._v5(data, exporter)
            elif version == 9:
                yield from self._v9(data, exporter)
            elif version == 10:
                yield from self._ipfix(data, exporter)
            else:
                self.stats.errors += 1
        except (struct.error, ValueError, IndexError):
            self.stats.errors += 1

    def _v5(self, data: bytes, name: str) -> Iterator[OneWay]:
        _v, count, uptime, secs, nsecs, sequence, _et, _ei, sampling = _V5_HEADER.unpack_from(data)
        if len(data) < _V5_HEADER.size + count * _V5_RECORD.size or count > 30:
            self.stats.errors += 1
            return
        exporter = self._exporter(name)
        self._sequence(exporter, 0, sequence, count)
        rate = (sampling & 0x3FFF) or 1
        boot = secs + nsecs / 1e9 - uptime / 1000
        for index in range(count):
            fields = _V5_RECORD.unpack_from(data, _V5_HEADER.size + index * _V5_RECORD.size)
            src, dst, _hop, _in, _out, packets, octets, first, last, sport, dport = fields[:11]
            flags, protocol = fields[12], fields[13]
            self.stats.records += 1
            yield OneWay(
                src=ipaddress.IPv4Address(src),
                dst=ipaddress.IPv4Address(dst),
                sport=sport,
                dport=dport,
                protocol=protocol,
                packets=packets * rate,
                size=octets * rate,
                start=boot + first / 1000,
                end=boot + last / 1000,
                flags=flags,
            )

    def _v9(self, data: bytes, name: str) -> Iterator[OneWay]:
        _v, _count, uptime, secs, sequence, source = _V9_HEADER.unpack_from(data)
        exporter = self._exporter(name)
        self._sequence(exporter, source, sequence, 1)
        boot = secs - uptime / 1000
        yield from self._sets(data, _V9_HEADER.size, exporter, source, boot, template_ids=(0, 1))

    def _ipfix(self, data: bytes, name: str) -> Iterator[OneWay]:
        _v, length, _export_time, sequence, domain = _IPFIX_HEADER.unpack_from(data)
        if length > len(data):
            self.stats.errors += 1
            return
        exporter = self._exporter(name)
        before = self.stats.records
        records = list(
            self._sets(data[:length], _IPFIX_HEADER.size, exporter, domain, None, (2, 3))
        )
        self._sequence(exporter, domain, sequence, self.stats.records - before, lenient=True)
        yield from records

    def _sets(  # noqa: PLR0917 -- one export's header values
        self,
        data: bytes,
        offset: int,
        exporter: _Exporter,
        domain: int,
        boot: float | None,
        template_ids: tuple[int, int],
    ) -> Iterator[OneWay]:
        while offset + 4 <= len(data):
            set_id, length = _SET.unpack_from(data, offset)
            if length < 4 or offset + length > len(data):
                self.stats.errors += 1
                return
            body = data[offset + 4 : offset + length]
            if set_id == template_ids[0]:
                self._templates(body, exporter, domain, ipfix=template_ids[0] == 2)
            elif set_id == template_ids[1]:
                self._options(body, exporter, domain, ipfix=template_ids[0] == 2)
            elif set_id >= 256:
                template = exporter.templates.get((domain, set_id))
                if template is None:
                    self.stats.no_template += 1
                else:
                    yield from self._data(body, template, exporter, domain, boot)
            offset += length

    def _store(self, exporter: _Exporter, key: tuple[int, int], template: Template) -> None:
        if key not in exporter.templates and len(exporter.templates) >= MAX_TEMPLATES:
            self.stats.template_drops += 1
            return
        exporter.templates[key] = template

    def _fields(self, body: bytes, offset: int, count: int, ipfix: bool) -> tuple[Template, int]:
        out = []
        for _ in range(count):
            element, size = _SET.unpack_from(body, offset)
            offset += 4
            enterprise = 0
            if ipfix and element & 0x8000:
                enterprise = struct.unpack_from("!I", body, offset)[0]
                element &= 0x7FFF
                offset += 4
            if size == 0:
                raise ValueError("zero-length field")
            out.append((element, size, enterprise))
        return tuple(out), offset

    def _templates(self, body: bytes, exporter: _Exporter, domain: int, ipfix: bool) -> None:
        offset = 0
        while offset + 4 <= len(body):
            template_id, count = _SET.unpack_from(body, offset)
            if count == 0 or template_id < 256:
                return
            try:
                template, offset = self._fields(body, offset + 4, count, ipfix)
            except (struct.error, ValueError):
                self.stats.errors += 1
                return
            self._store(exporter, (domain, template_id), template)

    def _options(self, body: bytes, exporter: _Exporter, domain: int, ipfix: bool) -> None:
        """Options templates: only to learn where the sampling interval comes in."""
        offset = 0
        while offset + 6 <= len(body):
            if ipfix:
                template_id, count, _scope_count = struct.unpack_from("!HHH", body, offset)
                try:
                    template, offset = self._fields(body, offset + 6, count, ipfix)
                except (struct.error, ValueError):
                    self.stats.errors += 1
                    return
            else:
                template_id, scope_len, option_len = struct.unpack_from("!HHH", body, offset)
                count = (scope_len + option_len) // 4
                try:
                    template, offset = self._fields(body, offset + 6, count, ipfix)
                except (struct.error, ValueError):
                    self.stats.errors += 1
                    return
                offset += -offset % 4
            if template_id >= 256:
                self._store(exporter, (domain, template_id), template)

    def _data(
        self, body: bytes, template: Template, exporter: _Exporter, domain: int, boot: float | None
    ) -> Iterator[OneWay]:
        offset = 0
        while offset < len(body):
            values: dict[int, bytes] = {}
            for element, declared, enterprise in template:
                size = declared
                if declared == 0xFFFF:  # IPFIX variable length
                    size = body[offset]
                    offset += 1
                    if size == 255:
                        size = _SET.unpack_from(body, offset)[0]
                        offset += 2
                if offset + size > len(body):
                    return  # padding, or a truncated record
                if not enterprise:
                    values[element] = body[offset : offset + size]
                offset += size
            if 34 in values or 305 in values:  # an options record: the sampling interval
                exporter.sampling[domain] = _number(values.get(34) or values[305]) or 1
                continue
            record = self._record(values, exporter.sampling.get(domain, 1), boot)
            if record is not None:
                self.stats.records += 1
                yield record

    @staticmethod
    def _record(values: dict[int, bytes], rate: int, boot: float | None) -> OneWay | None:
        if 8 in values and 12 in values:
            src: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(values[8])
            dst: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(values[12])
        elif 27 in values and 28 in values:
            src, dst = ipaddress.IPv6Address(values[27]), ipaddress.IPv6Address(values[28])
        else:
            return None
        packets = _number(values.get(2) or values.get(86) or b"\0")
        octets = _number(values.get(1) or values.get(85) or b"\0")
        if 152 in values:
            start, end = _number(values[152]) / 1000, _number(values.get(153, values[152])) / 1000
        elif 150 in values:
            start, end = float(_number(values[150])), float(_number(values.get(151, values[150])))
        elif boot is not None and 22 in values:
            start = boot + _number(values[22]) / 1000
            end = boot + _number(values.get(21, values[22])) / 1000
        else:
            start = end = 0.0
        return OneWay(
            src=src,
            dst=dst,
            sport=_number(values.get(7, b"\0")),
            dport=_number(values.get(11, b"\0")),
            protocol=_number(values.get(4, b"\0")),
            packets=packets * rate,
            size=octets * rate,
            start=start,
            end=end,
            flags=_number(values.get(6, b"\0")),
        )
