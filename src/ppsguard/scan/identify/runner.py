"""The identification engine: asks each open port what it is, within a hard time budget.

Per TCP port: a passive read (for services that speak first) races the probe the port number
suggests, on parallel connections; once the suggested probe is done without naming the service,
the remaining probes run in a sliding window of parallel connections, fewest-surprises first,
while the passive read still waits. TLS found anywhere is unwrapped
and probed again inside; plaintext protocols with STARTTLS are upgraded to read their
certificate; a service named without its release (etcd) is asked for it by a read-only follow-up
(probes.FOLLOW_UPS).
Per UDP port every UDP payload is sent once (the suggested one first), unless the answer the port
scan already heard names the product (then nothing is sent). Every wait ends at the port's deadline
(default 2 s after the port's turn starts), at most 64 KiB is read per probe, and a port only
gets its turn (and its clock) when a concurrency slot is free, so a tarpit stalls nothing else.
Failures are data: a probe that errors is an attempt with no answer, never an exception.
With a rate (the scope gate's ceiling), every connection and datagram waits for its turn in one
shared pacer, so -T and --max-rate hold for service probes too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ppsguard.knowledge.services import service_name
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import Confidence, Evidence, ServiceInfo, TlsInfo
from ppsguard.scan import udp_payloads
from ppsguard.scan.engines.base import UdpAnswers
from ppsguard.scan.identify import classify, families, probes
from ppsguard.scan.identify.escape import escape_bytes
from ppsguard.scan.identify.tls import ALPN_OFFER, ALPN_SERVICES, read_idle, tls_exchange

READ_CAP = 64 * 1024
IDLE_GAP = 0.15  # after the first bytes, stop reading when nothing more comes for this long
PASSIVE_SHARE = 0.45  # share of the budget the passive read waits for a banner
BATCH = 8  # fallback probes in flight at once per port (a sliding window)
PROBE_WAIT_SHARE = 0.35  # a payload probe gives up when no first byte comes within this share
PROBE_WAIT_MIN_S = 0.3  # ... but never waits less than this
STARTTLS = {"smtp", "imap", "pop3", "ftp", "ldap", "postgresql"}

Target = tuple[IPAddress, int, Protocol]


class Pacer:
    """Starts at most `rate` connections (or datagrams) per second; no rate, no waiting."""

    def __init__(self, rate: float | None = None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_turn = 0.0

    async def turn(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        at = max(now, self.next_turn)
        self.next_turn = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


@dataclass(frozen=True, slots=True)
class Attempt:
    probe: str
    sent: bytes
    data: bytes
    elapsed_s: float
    service: ServiceInfo | None = None
    tls: TlsInfo | None = None


def expected_service(port: int, protocol: Protocol) -> str | None:
    """What the port number suggests: the knowledge base (our catalog merged with this host's
    /etc/services, read at run time)."""
    return service_name(port, protocol)


async def _read(reader: asyncio.StreamReader, deadline: float, first_wait: float) -> bytes:
    return await read_idle(reader, deadline, first_wait, READ_CAP, IDLE_GAP)


async def _exchange(  # noqa: PLR0917
    host: str, port: int, probe: probes.Probe, deadline: float, wait: float, pacer: Pacer
) -> Attempt:
    loop = asyncio.get_running_loop()
    await pacer.turn()
    started = loop.time()
    payload = probes.render(probe, host)
    writer: asyncio.StreamWriter | None = None
    data = b""
    try:
        reader, stream = await asyncio.wait_for(
            asyncio.open_connection(host, port), max(0.0, deadline - started)
        )
        writer = stream
        if payload:
            stream.write(payload)
            await asyncio.wait_for(stream.drain(), max(0.0, deadline - loop.time()))
        data = await _read(reader, deadline, wait)
    except (OSError, TimeoutError, EOFError):
        pass
    finally:
        if writer is not None:
            writer.transport.abort()
    service = classify.interpret(probe.name, data, payload=payload, port=port)
    return Attempt(probe.name, payload, data, loop.time() - started, service)


async def _tls_attempt(  # noqa: PLR0917
    host: str,
    port: int,
    deadline: float,
    pacer: Pacer,
    starttls: str | None = None,
    wait: float = 1.0,
) -> Attempt:
    loop = asyncio.get_running_loop()
    await pacer.turn()
    started = loop.time()
    # after STARTTLS the protocol is already known: only the certificate is wanted
    payload = b"" if starttls else probes.render(probes.BY_NAME["http-get"], host)
    outcome = await tls_exchange(
        host,
        port,
        deadline,
        payload=payload,
        starttls=starttls,
        cap=READ_CAP,
        passive_wait=0.0 if starttls else 0.25,
        handshake_wait=wait,
        now=dt.datetime.now(dt.UTC),
        alpn=() if starttls else ALPN_OFFER,
    )
    service = None
    info = outcome.info
    if info is not None:
        inner = classify.interpret(outcome.inner_probe, outcome.response, tls=True, port=port)
        chosen = info.alpn
        if inner is None and chosen in ALPN_SERVICES:
            # the server named the protocol inside the tunnel when it chose from our ALPN offer
            inner = ServiceInfo(
                name=ALPN_SERVICES[chosen], extra=f"ALPN {chosen}", confidence=Confidence.MATCHED
            )
        service = inner or ServiceInfo(name="tls", confidence=Confidence.CONFIRMED)
    return Attempt(
        "tls",
        payload if outcome.info else b"",
        outcome.response,
        loop.time() - started,
        service,
        info,
    )


def _weak(attempt: Attempt) -> bool:
    service = attempt.service
    return (
        service is not None
        and service.name == "http"
        and service.product is None
        and attempt.probe != "http-get"
    )


async def _first_identified(
    tasks: list[asyncio.Task[Attempt]], attempts: list[Attempt]
) -> Attempt | None:
    """Wait for tasks in completion order; the first that names a service wins, the rest stop.
    A bare HTTP error page to another protocol's probe (a web server refusing bytes it cannot
    parse) names HTTP but not the server: it wins only if no other task does better."""
    winner = None
    try:
        for next_done in asyncio.as_completed(tasks):
            attempt = await next_done
            attempts.append(attempt)
            if attempt.service is None:
                continue
            if _weak(attempt) and any(not t.done() for t in tasks):
                winner = winner or attempt
                continue
            winner = attempt if winner is None or not _weak(attempt) else winner
            break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return winner


async def _sliding(  # noqa: PLR0917
    launch: Callable[[probes.Probe], asyncio.Task[Attempt]],
    waiting: list[probes.Probe],
    attempts: list[Attempt],
    deadline: float,
    opening: int,
    passive: asyncio.Task[Attempt],
) -> Attempt | None:
    """The first `opening` probes fly beside the `passive` read; once they are done, the rest
    follow in a sliding window of BATCH connections (a wrong guess that stays silent holds one
    slot, not a whole batch, and the passive read's long wait holds none). The first answer
    that names the service wins. A bare HTTP error page (`_weak`) stops new launches and wins
    only if nothing in flight does better."""
    loop = asyncio.get_running_loop()
    queue = list(waiting)
    flying: set[asyncio.Task[Attempt]] = set()
    beside: set[asyncio.Task[Attempt]] = {passive}
    window, ended, weak = max(1, opening), 0, None
    try:
        while True:
            while queue and weak is None and len(flying) < window and loop.time() < deadline:
                flying.add(launch(queue.pop(0)))
            if not flying and not beside:
                return weak
            done, _ = await asyncio.wait(flying | beside, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                ended += task in flying
                flying.discard(task)
                beside.discard(task)
                attempt = task.result()
                attempts.append(attempt)
                if attempt.service is None:
                    continue
                if not _weak(attempt):
                    return attempt
                weak = weak or attempt
            window = BATCH if ended >= opening else window
    finally:
        for task in flying | beside:
            task.cancel()
        await asyncio.gather(*flying, *beside, return_exceptions=True)


async def _identify_tcp(
    host: str, port: int, budget: float, intrusive: bool, pacer: Pacer
) -> tuple[Attempt | None, list[Attempt]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    attempts: list[Attempt] = []
    first = probes.suggested(port, Protocol.TCP, intrusive=intrusive)
    others = [p for p in probes.fallbacks(Protocol.TCP, intrusive=intrusive) if p is not first]
    # the passive read races the suggested probe (or, with no suggestion, the two most common
    # protocols: TLS and HTTP); once those are answered or given up, the rest in a window
    opening = [first] if first is not None else others[:2]
    rest = [p for p in others if p not in opening]
    probe_wait = min(budget, max(PROBE_WAIT_MIN_S, budget * PROBE_WAIT_SHARE))

    def launch(probe: probes.Probe) -> asyncio.Task[Attempt]:
        if probe.tls:
            return asyncio.create_task(_tls_attempt(host, port, deadline, pacer, wait=probe_wait))
        return asyncio.create_task(_exchange(host, port, probe, deadline, probe_wait, pacer))

    null = probes.BY_NAME["null"]
    passive = asyncio.create_task(
        _exchange(host, port, null, deadline, budget * PASSIVE_SHARE, pacer)
    )
    winner = await _sliding(launch, [*opening, *rest], attempts, deadline, len(opening), passive)
    named = winner.service.name if winner is not None and winner.service is not None else None
    follow = probes.FOLLOW_UPS.get(named or "")
    if follow is not None and loop.time() < deadline:
        # the service is known; a read-only request of its own asks the release
        asked = await _exchange(host, port, probes.BY_NAME[follow], deadline, probe_wait, pacer)
        attempts.append(asked)
        if asked.service is not None and asked.service.name == named:
            winner = asked
    if winner is not None and winner.service is not None and winner.tls is None:
        name = winner.service.name
        if name in STARTTLS and loop.time() < deadline:
            upgraded = await _tls_attempt(host, port, deadline, pacer, starttls=name)
            if upgraded.tls is not None:
                winner = replace(winner, tls=upgraded.tls)
    return winner, attempts


async def _udp_exchange(
    host: str, port: int, probe: probes.Probe, deadline: float, pacer: Pacer
) -> Attempt:
    loop = asyncio.get_running_loop()
    await pacer.turn()
    started = loop.time()
    payload = probes.render(probe, host)
    received: asyncio.Future[bytes] = loop.create_future()

    class _Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if not received.done():
                received.set_result(data[:READ_CAP])

        def error_received(self, exc: Exception) -> None:
            if not received.done():
                received.set_result(b"")

    transport = None
    data = b""
    try:
        transport, _ = await loop.create_datagram_endpoint(_Receiver, remote_addr=(host, port))
        transport.sendto(payload)
        data = await asyncio.wait_for(received, max(0.0, deadline - loop.time()))
    except (OSError, TimeoutError):
        pass
    finally:
        if transport is not None:
            transport.close()
    return Attempt(
        probe.name,
        payload,
        data,
        loop.time() - started,
        classify.interpret(probe.name, data, payload=payload, port=port),
    )


# the port scan's UDP payloads (scan.udp_payloads.NAMES) -> the probe whose parsers read the answer
_SCAN_PAYLOADS = {"dns": "dns-version-udp", "mdns": "dns-version-udp", "ntp": "ntp-client",
                  "snmp": "snmpv3-discovery", "ike": "ike-main-mode"}  # fmt: skip


def earlier_answer(port: int, sent: bytes, data: bytes) -> Attempt:
    """The answer the port scan already received on a UDP port, read as identification would."""
    probe = _SCAN_PAYLOADS.get(udp_payloads.NAMES.get(port, ""), "null")
    if sent and sent == udp_payloads.INTRUSIVE.get(port):
        probe = "snmp-sysdescr"  # --intrusive: the scan itself asked with community "public"
    service = classify.interpret(probe, data, payload=sent, port=port)
    return Attempt(f"udp-scan/{probe}", sent, data, 0.0, service)


async def _identify_udp(  # noqa: PLR0917
    host: str,
    port: int,
    budget: float,
    intrusive: bool,
    pacer: Pacer,
    earlier: Attempt | None = None,
) -> tuple[Attempt | None, list[Attempt]]:
    """Every UDP payload goes to every UDP port at once (a DNS server or SNMP agent may sit on
    any port; a datagram each is cheap); the first answer that names the service wins. With
    `intrusive`, an SNMP agent found by the credential-free SNMPv3 discovery is then asked its
    sysDescr with community "public"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    attempts: list[Attempt] = [earlier] if earlier is not None else []
    if earlier is not None and earlier.service is not None and earlier.service.product:
        winner: Attempt | None = earlier  # the scan's own answer named the product already
    else:
        chosen = probes.fallbacks(Protocol.UDP, intrusive=False)
        first = probes.suggested(port, Protocol.UDP, intrusive=False)
        if first is not None:
            chosen = [first, *(p for p in chosen if p is not first)]
        tasks = [asyncio.create_task(_udp_exchange(host, port, p, deadline, pacer)) for p in chosen]
        winner = await _first_identified(tasks, attempts)
        if winner is None and earlier is not None and earlier.service is not None:
            winner = earlier  # silent now (rate limit, one-shot responder): what the scan heard
    named = winner.service.name if winner is not None and winner.service is not None else None
    already = winner is not None and winner.probe.endswith("snmp-sysdescr")
    if intrusive and named == "snmp" and not already and loop.time() < deadline:
        sysdescr = probes.BY_NAME["snmp-sysdescr"]
        asked = await _udp_exchange(host, port, sysdescr, deadline, pacer)
        attempts.append(asked)
        if asked.service is not None:
            winner = asked
    return winner, attempts


def _evidence(attempt: Attempt) -> Evidence:
    probe = (
        attempt.probe if not attempt.sent else f"{attempt.probe}: {escape_bytes(attempt.sent, 64)}"
    )
    return Evidence(
        probe, escape_bytes(attempt.data) if attempt.data else None, round(attempt.elapsed_s, 4)
    )


def _mismatch_evidence(attempt: Attempt, service: ServiceInfo) -> str:
    named = " ".join(x for x in (service.name, service.product, service.version) if x)
    answer = escape_bytes(attempt.data, 60) if attempt.data else "(no bytes)"
    how = "handshake" if service.confidence is Confidence.CONFIRMED else "signature"
    return f"the {attempt.probe} probe's answer {answer} is {named} ({how})"


def summarize(
    target: Target, winner: Attempt | None, attempts: list[Attempt], expect: str | None = None
) -> ServiceInfo:
    """The ServiceInfo for one port from its attempts (pure; exposed for tests). `expect` is
    the registry's service for the port; without it the port's well-known service is expected."""
    _, port, protocol = target
    source = "registry" if expect else "well-known port"
    expected = expect or expected_service(port, protocol)
    if winner is not None and winner.service is not None:
        service = replace(winner.service, tls=winner.tls, evidence=_evidence(winner))
        found = families.mismatch(
            expected, service, source=source, evidence=_mismatch_evidence(winner, service)
        )
        return replace(service, mismatch=found)
    answered = [a for a in attempts if a.data]
    if answered:  # it spoke, but nothing we know: keep its first bytes for signature writers
        return ServiceInfo(
            name=None, confidence=Confidence.GUESSED, evidence=_evidence(answered[0])
        )
    waited = max((a.elapsed_s for a in attempts), default=0.0)
    return ServiceInfo(
        name=expected,
        confidence=Confidence.GUESSED,
        evidence=Evidence("null", None, round(waited, 4)),
    )


async def identify_all(
    targets: Sequence[Target],
    *,
    budget: float,
    intrusive: bool,
    concurrency: int,
    rate: float | None = None,
    expect: Mapping[Target, str] | None = None,
    answers: UdpAnswers | None = None,
) -> dict[Target, ServiceInfo]:
    """Identify every target; each port gets `budget` seconds from when its turn starts, and
    all connections together start at most `rate` per second. `expect` names the registry's
    service per target (the mismatch reference), `answers` what the UDP port scan heard."""
    slots = asyncio.Semaphore(max(1, concurrency // (BATCH + 1)))
    pacer = Pacer(rate)

    async def one(target: Target) -> tuple[Target, ServiceInfo]:
        address, port, protocol = target
        async with slots:
            host = str(address)
            if protocol is Protocol.UDP:
                heard = (answers or {}).get((address, port))
                earlier = earlier_answer(port, *heard) if heard is not None else None
                winner, attempts = await _identify_udp(
                    host, port, budget, intrusive, pacer, earlier
                )
            else:
                winner, attempts = await _identify_tcp(host, port, budget, intrusive, pacer)
        return target, summarize(target, winner, attempts, (expect or {}).get(target))

    results = await asyncio.gather(*(one(t) for t in dict.fromkeys(targets)))
    return dict(results)
