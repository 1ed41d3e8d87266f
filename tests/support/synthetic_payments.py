"""Synthetic payments for the storage benchmarks (`scripts/storage_size.py`, `scripts/bench_scale.py`).

Kept column-wise, so a million payments stay a few hundred MB of Python objects; one generator, so the
two benchmarks measure the same kind of data (heights spread over a year of blocks, amounts from the
default minimum to a hundred times it).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from anon_ticket.core.domain import PAYMENT_ID_DOMAIN, PaymentId

START_HEIGHT = 3_200_000
BLOCKS_PER_YEAR = 262_800  # one block per two minutes
MIN_AMOUNT = 10_000_000_000  # the default MIN_PAYMENT_AMOUNT


@dataclass
class Payments:
    pids: list[bytes]
    payment_ids: list[bytes]
    txids: list[bytes]
    amounts: list[int]
    heights: list[int]

    def __len__(self) -> int:
        return len(self.pids)


def chunks(blob: bytes, size: int) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def payment_id_of(pid: bytes) -> bytes:
    # PaymentId(pid).chain_payment_id().raw without the dataclass checks; equality is asserted below.
    return hashlib.sha3_256(PAYMENT_ID_DOMAIN + pid).digest()[:8]


def generate(count: int, rng: random.Random) -> Payments:
    pids = chunks(rng.randbytes(32 * count), 32)
    payments = Payments(
        pids=pids,
        payment_ids=[payment_id_of(pid) for pid in pids],
        txids=chunks(rng.randbytes(32 * count), 32),
        amounts=[rng.randint(MIN_AMOUNT, 100 * MIN_AMOUNT) for _ in range(count)],
        heights=[START_HEIGHT + i * BLOCKS_PER_YEAR // max(count, 1) for i in range(count)],
    )
    for pid, payment_id in zip(pids[:100], payments.payment_ids, strict=False):
        assert PaymentId(pid).chain_payment_id().raw == payment_id
    return payments
