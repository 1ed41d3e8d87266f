"""A Bloom filter of known payment ids: unknown PIDs are answered without touching storage.

Only payment ids the wallet reported are ever added, so its size is set by configuration and real
payments, never by what an attacker sends. A false positive costs one indexed read; a false negative
is impossible for an id that was added, which is why new payment ids are added before their batch
commits. Positions come from a keyed BLAKE2b with a per-process salt, so nobody can grind PIDs that
reliably fall through to storage.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading


class PidScreen:
    """Thread-safe for one writer and many readers: readers only test bits in a bytearray."""

    def __init__(self, capacity: int, false_positive_rate: float = 0.01) -> None:
        if capacity < 1 or not 0 < false_positive_rate < 1:
            raise ValueError("capacity must be positive and the false positive rate in (0, 1)")
        bits = math.ceil(-capacity * math.log(false_positive_rate) / (math.log(2) ** 2))
        self.bit_count = max(64, bits)
        self.hash_count = max(1, round(self.bit_count / capacity * math.log(2)))
        self.capacity = capacity
        self._bits = bytearray((self.bit_count + 7) // 8)
        self._key = secrets.token_bytes(16)
        self._write_lock = threading.Lock()
        self.count = 0

    @property
    def memory_bytes(self) -> int:
        return len(self._bits)

    @property
    def over_capacity(self) -> bool:
        return self.count > self.capacity

    def _positions(self, payment_id: bytes) -> list[int]:
        digest = hashlib.blake2b(payment_id, digest_size=16, key=self._key).digest()
        first = int.from_bytes(digest[:8], "little")
        step = int.from_bytes(digest[8:], "little") | 1
        return [(first + i * step) % self.bit_count for i in range(self.hash_count)]

    def add(self, payment_id: bytes) -> None:
        with self._write_lock:
            fresh = False
            for position in self._positions(payment_id):
                byte, bit = divmod(position, 8)
                if not self._bits[byte] >> bit & 1:
                    fresh = True
                    self._bits[byte] |= 1 << bit
            if fresh:
                self.count += 1

    def might_contain(self, payment_id: bytes) -> bool:
        bits = self._bits
        for position in self._positions(payment_id):
            byte, bit = divmod(position, 8)
            if not bits[byte] >> bit & 1:
                return False
        return True
