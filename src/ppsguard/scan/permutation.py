"""A keyed pseudo-random permutation of 0..n-1 (probe order), repeatable from a printed seed.

A 4-round Feistel network over the smallest even-bit domain >= n, with cycle-walking to stay in
range: O(1) memory, every index exactly once, the same order for the same seed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator


def new_seed() -> int:
    return secrets.randbits(48)


class KeyedPermutation:
    def __init__(self, n: int, seed: int) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        self.n = n
        self.seed = seed
        bits = max(2, (max(n - 1, 1)).bit_length())
        bits += bits & 1
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        key = seed.to_bytes(16, "big", signed=False)
        self._keys = [
            hashlib.blake2b(bytes([r]), key=key, digest_size=8).digest() for r in range(4)
        ]
        self._tables: list[list[int]] | None = None
        if self._half <= 12:  # small domains: precompute the round functions
            self._tables = [[self._hash(r, v) for v in range(1 << self._half)] for r in range(4)]

    def _hash(self, r: int, value: int) -> int:
        digest = hashlib.blake2b(
            value.to_bytes(4, "big"), key=self._keys[r], digest_size=4
        ).digest()
        return int.from_bytes(digest, "big") & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        tables = self._tables
        for r in range(4):
            f = tables[r][right] if tables is not None else self._hash(r, right)
            left, right = right, left ^ f
        return (left << self._half) | right

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x = self._encrypt(i)
        while x >= self.n:
            x = self._encrypt(x)
        return x

    def __iter__(self) -> Iterator[int]:
        for i in range(self.n):
            yield self[i]

    def __len__(self) -> int:
        return self.n
