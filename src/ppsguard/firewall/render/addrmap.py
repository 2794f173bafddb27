"""First-match address maps: turn an ordered run of address rules into one interval verdict map.

Inside one port chain of the nftables table every rule already covers the packet's port, so the
rules differ only by address. A run of consecutive rules of one family that share the same
destination match can be replaced by one lookup `ip saddr vmap @map`, provided the map gives
every address to the FIRST rule of the run whose sources contain it. `first_match_intervals`
computes exactly that: the address space cut at every network boundary into disjoint intervals,
each owned by the lowest-indexed rule covering it (addresses no rule covers are absent, so the
packet falls through to what follows the run, as it would past the rules one by one). The
intervals are disjoint, so the kernel's interval lookup has exactly one answer. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Sequence

from ppsguard.model.net import IPNetwork


def first_match_intervals(
    sources: Sequence[Sequence[IPNetwork]],
) -> list[tuple[int, int, int]]:
    """Disjoint (first, last, owner) integer intervals; owner = index of the first covering run.

    `sources[k]` are the networks of the k-th rule (one address family for all). Adjacent
    intervals with the same owner are merged.
    """
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for owner, networks in enumerate(sources):
        for network in networks:
            first = int(network.network_address)
            last = int(network.broadcast_address)
            starts.setdefault(first, []).append(owner)
            ends.setdefault(last + 1, []).append(owner)
    points = sorted(set(starts) | set(ends))
    active: dict[int, int] = {}
    heap: list[int] = []
    out: list[tuple[int, int, int]] = []
    for position, point in enumerate(points):
        for owner in ends.get(point, []):
            active[owner] -= 1
            if active[owner] == 0:
                del active[owner]
        for owner in starts.get(point, []):
            if owner not in active:
                heapq.heappush(heap, owner)
            active[owner] = active.get(owner, 0) + 1
        while heap and heap[0] not in active:
            heapq.heappop(heap)
        if not heap or position + 1 >= len(points):
            continue
        winner = heap[0]
        last = points[position + 1] - 1
        if out and out[-1][2] == winner and out[-1][1] + 1 == point:
            out[-1] = (out[-1][0], last, winner)
        else:
            out.append((point, last, winner))
    return out


def interval_text(first: int, last: int, version: int) -> str:
    """nft element syntax for an address interval: an address, a prefix, or `a-b`."""
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    width = 32 if version == 4 else 128
    if first == last:
        return str(make(first))
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        return f"{make(first)}/{width - (size.bit_length() - 1)}"
    return f"{make(first)}-{make(last)}"
