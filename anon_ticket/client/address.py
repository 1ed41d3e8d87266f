"""Integrated addresses built offline (docs/PROTOCOL.md §1 step 2): no request reveals which PID we pay for.

An address is `network byte | public spend key | public view key [| 8-byte payment id]` followed by
the first 4 bytes of its Keccak-256, all in Monero base58. Keccak-256 here is the original Keccak that
Monero uses, not the standardised SHA3-256 of `hashlib`: their paddings differ, so the checksums would.

We validate the primary address fully (alphabet, block structure, checksum, network, length) because a
typo or a wrong kind of address here means money sent where the server will never see it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from Cryptodome.Hash import keccak

from anon_ticket.client import base58
from anon_ticket.client.errors import InvalidAddress
from anon_ticket.core.domain import ChainPaymentId

KEY_BYTES = 32
CHECKSUM_BYTES = 4
STANDARD_ADDRESS_BYTES = 1 + 2 * KEY_BYTES + CHECKSUM_BYTES  # 69 bytes, 95 characters


class Network(enum.Enum):
    """The three Monero networks; each value is (standard, integrated, subaddress) network bytes."""

    MAINNET = (18, 19, 42)
    TESTNET = (53, 54, 63)
    STAGENET = (24, 25, 36)

    @property
    def standard_byte(self) -> int:
        return self.value[0]

    @property
    def integrated_byte(self) -> int:
        return self.value[1]

    @property
    def label(self) -> str:
        return self.name.lower()


def _keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def _with_checksum(payload: bytes) -> str:
    return base58.encode(payload + _keccak256(payload)[:CHECKSUM_BYTES])


def _kind_of(network_byte: int) -> tuple[Network, str] | None:
    for network in Network:
        for position, kind in enumerate(("standard", "integrated", "subaddress")):
            if network.value[position] == network_byte:
                return network, kind
    return None


@dataclass(frozen=True, slots=True)
class PrimaryAddress:
    """A wallet's primary (standard) address: the only kind an 8-byte payment id can be attached to."""

    network: Network
    spend_key: bytes
    view_key: bytes

    def __post_init__(self) -> None:
        if len(self.spend_key) != KEY_BYTES or len(self.view_key) != KEY_BYTES:
            raise TypeError("PrimaryAddress takes two 32-byte public keys")

    @classmethod
    def parse(cls, text: object) -> PrimaryAddress:
        """Accept exactly one standard address; say precisely what is wrong with anything else."""
        if not isinstance(text, str) or not text:
            raise InvalidAddress("a Monero address must be a non-empty string")
        try:
            raw = base58.decode(text)
        except base58.Base58Error as exc:
            raise InvalidAddress(f"not a Monero address: {exc}") from exc
        if len(raw) <= CHECKSUM_BYTES:
            raise InvalidAddress("not a Monero address: far too short")
        payload, checksum = raw[:-CHECKSUM_BYTES], raw[-CHECKSUM_BYTES:]
        if _keccak256(payload)[:CHECKSUM_BYTES] != checksum:
            raise InvalidAddress("not a Monero address: checksum mismatch (is it mistyped or truncated?)")
        kind = _kind_of(payload[0])
        if kind is None:
            raise InvalidAddress(f"not a Monero address: unknown network byte {payload[0]}")
        network, what = kind
        if what == "integrated":
            raise InvalidAddress("this is an integrated address; give the wallet's primary address")
        if what == "subaddress":
            raise InvalidAddress("this is a subaddress; a payment id can only go with the primary address")
        if len(raw) != STANDARD_ADDRESS_BYTES:
            raise InvalidAddress(f"not a Monero address: {len(raw)} bytes where a primary address has 69")
        return cls(network, payload[1 : 1 + KEY_BYTES], payload[1 + KEY_BYTES :])

    def __str__(self) -> str:
        return _with_checksum(bytes([self.network.standard_byte]) + self.spend_key + self.view_key)

    def integrated(self, payment_id: ChainPaymentId) -> str:
        """The address a wallet pays so that the transfer carries `payment_id` on chain."""
        payload = bytes([self.network.integrated_byte]) + self.spend_key + self.view_key + payment_id.raw
        return _with_checksum(payload)


def integrated_address(primary: str, payment_id: ChainPaymentId) -> str:
    """What `make_integrated_address` of the wallet behind `primary` would answer, without asking it."""
    return PrimaryAddress.parse(primary).integrated(payment_id)
