"""Cross-check against an independent implementation: the PyPI `monero` package (a test extra)."""

from __future__ import annotations

from Cryptodome.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

# The `monero` package is a test extra (setup.cfg): imported, never skipped for.
from monero import address as monero_address
from monero import base58 as monero_base58

from anon_ticket.client import base58
from anon_ticket.client.address import Network, integrated_address
from anon_ticket.core.domain import ChainPaymentId


def _primary(network: Network, keys: bytes) -> str:
    payload = bytes([network.standard_byte]) + keys
    return base58.encode(payload + keccak.new(data=payload, digest_bits=256).digest()[:4])


@settings(max_examples=300)
@given(
    network=st.sampled_from(list(Network)),
    keys=st.binary(min_size=64, max_size=64),
    payment_id=st.binary(min_size=8, max_size=8),
)
def test_integrated_address_agrees_with_the_monero_package(
    network: Network, keys: bytes, payment_id: bytes
) -> None:
    primary = _primary(network, keys)
    theirs = monero_address.address(primary).with_payment_id(payment_id.hex())
    assert integrated_address(primary, ChainPaymentId(payment_id)) == str(theirs)


@given(st.binary(min_size=1, max_size=80))
def test_base58_agrees_with_the_monero_package(data: bytes) -> None:
    assert base58.encode(data) == monero_base58.encode(data.hex())
    assert base58.decode(monero_base58.encode(data.hex())) == data
