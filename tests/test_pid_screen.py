"""The PID screen (anon_ticket/core/pid_screen.py): no false negatives, about the configured false positives,
and the start-up path (`add_many`, with its positions inlined for speed) setting exactly the bits that
`_positions` names, the same positions as the plain double-hashing formula."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from anon_ticket.core.pid_screen import PidScreen


def ids(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(8) for _ in range(count)]


def formula_positions(screen: PidScreen, payment_id: bytes) -> list[int]:
    """Double hashing as first written: (first + i * step) mod size, on the full 64-bit values."""
    digest = hashlib.blake2b(payment_id, digest_size=16, key=screen._key).digest()
    first = int.from_bytes(digest[:8], "little")
    step = int.from_bytes(digest[8:], "little") | 1
    return [(first + i * step) % screen.bit_count for i in range(screen.hash_count)]


def test_positions_are_the_double_hashing_formula() -> None:
    screen = PidScreen(50_000)
    for payment_id in ids(2_000, 1):
        assert screen._positions(payment_id) == formula_positions(screen, payment_id)


def test_add_many_sets_the_bits_one_add_at_a_time_would() -> None:
    one_by_one, at_once = PidScreen(10_000), PidScreen(10_000)
    at_once._key = one_by_one._key
    at_once._hasher = one_by_one._hasher.copy()
    known = ids(10_000, 2)
    for payment_id in known:
        one_by_one.add(payment_id)
    at_once.add_many(iter(known))  # a stream, as the rebuild passes it
    assert at_once._bits == one_by_one._bits
    assert at_once.count == one_by_one.count
    expected = bytearray(len(at_once._bits))
    for payment_id in known:
        for position in formula_positions(at_once, payment_id):
            expected[position // 8] |= 1 << (position % 8)
    assert at_once._bits == expected


def test_no_false_negatives_and_about_one_percent_false_positives_at_capacity() -> None:
    screen = PidScreen(20_000)
    known = ids(20_000, 3)
    screen.add_many(known)
    assert all(screen.might_contain(payment_id) for payment_id in known)
    unknown = ids(50_000, 4)
    false_positives = sum(screen.might_contain(payment_id) for payment_id in unknown)
    # 1 % expected (500); a Bloom filter at capacity stays well inside twice that.
    assert 200 < false_positives < 1_000
    # `count` counts the ids that set a new bit: a few of the last ones found theirs all set already.
    assert 19_000 < screen.count <= 20_000
    assert not screen.over_capacity


def test_adding_again_changes_nothing() -> None:
    screen = PidScreen(1_000)
    known = ids(500, 6)
    screen.add_many(known)
    bits, count = bytes(screen._bits), screen.count
    screen.add_many(known)
    screen.add(known[0])
    assert bytes(screen._bits) == bits and screen.count == count


def test_readers_see_every_id_added_while_they_read() -> None:
    """One writer adding while request threads test: an id added before a read is always found."""
    screen = PidScreen(100_000)
    known = ids(60_000, 7)
    added = threading.Event()
    misses: list[bytes] = []

    def reader() -> None:
        added.wait(30)
        for payment_id in known[:20_000]:
            if not screen.might_contain(payment_id):
                misses.append(payment_id)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    screen.add_many(known[:20_000])
    added.set()
    screen.add_many(known[20_000:])
    for thread in threads:
        thread.join(60)
    assert not misses


def test_a_bad_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        PidScreen(0)
    with pytest.raises(ValueError, match="false positive"):
        PidScreen(10, 1.5)
