"""Integrated addresses built offline must equal what monero-wallet-rpc itself answers.

The vectors (tests/support/addresses.py) are real wallet answers captured on regtest: the primary
address of get_address and the integrated addresses make_integrated_address returned for explicit and
random payment ids (two of those answers are kept whole in tests/support/samples/).
"""

from __future__ import annotations

import pytest
from Cryptodome.Hash import keccak
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.client import base58
from anon_ticket.client.address import Network, PrimaryAddress, integrated_address
from anon_ticket.client.errors import InvalidAddress, UsageError
from anon_ticket.core.domain import ChainPaymentId, PaymentId
from anon_ticket.errors import AnonTicketError
from tests.support.addresses import PAYER_PRIMARY, PRIMARY, SUBADDRESS, WALLET_ANSWERS


def _keccak(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def _address(payload: bytes) -> str:
    return base58.encode(payload + _keccak(payload)[:4])


@pytest.mark.parametrize(("payment_id", "expected"), sorted(WALLET_ANSWERS.items()))
def test_equals_the_wallets_make_integrated_address(payment_id: str, expected: str) -> None:
    assert integrated_address(PRIMARY, ChainPaymentId.parse(payment_id)) == expected


def test_keccak_is_the_original_not_sha3() -> None:
    """The empty-input digests differ; Monero's checksum needs the first one."""
    assert _keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_primary_round_trips_and_knows_its_network() -> None:
    for text in (PRIMARY, PAYER_PRIMARY):
        parsed = PrimaryAddress.parse(text)
        assert str(parsed) == text
        assert parsed.network is Network.MAINNET


def test_integrated_address_layout() -> None:
    primary = PrimaryAddress.parse(PRIMARY)
    pid = PaymentId(bytes([0xA3]) * 32)
    text = primary.integrated(pid.chain_payment_id())
    raw = base58.decode(text)
    assert len(text) == 106
    assert len(raw) == 77
    assert raw[0] == 19
    assert raw[1:33] == primary.spend_key
    assert raw[33:65] == primary.view_key
    assert raw[65:73].hex() == "43e27509eb504ae9"  # docs/PROTOCOL.md §2 vector for pid a3 × 32
    assert raw[73:] == _keccak(raw[:73])[:4]


@pytest.mark.parametrize(
    ("network", "standard", "integrated"),
    [(Network.MAINNET, 18, 19), (Network.TESTNET, 53, 54), (Network.STAGENET, 24, 25)],
)
def test_every_network_maps_to_its_integrated_byte(network: Network, standard: int, integrated: int) -> None:
    keys = PrimaryAddress.parse(PRIMARY)
    text = _address(bytes([standard]) + keys.spend_key + keys.view_key)
    parsed = PrimaryAddress.parse(text)
    assert parsed.network is network
    built = base58.decode(parsed.integrated(ChainPaymentId(bytes(8))))
    assert built[0] == integrated


def _flip_char(text: str, index: int) -> str:
    replacement = "2" if text[index] != "2" else "3"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "non-empty"),
        (WALLET_ANSWERS["1234567890abcdef"], "integrated address"),
        (SUBADDRESS, "subaddress"),
        (_flip_char(PRIMARY, 40), "checksum"),
        (PRIMARY[:-1], "not a Monero address"),
        (PRIMARY + "1", "not a Monero address"),
        (PRIMARY[:-11], "checksum"),
        ("0" + PRIMARY[1:], "not a base58 character"),
        (" " + PRIMARY, "not a base58 character"),
        (_address(bytes([99]) + bytes(64)), "unknown network byte 99"),
        (_address(bytes([18]) + bytes(65)), "70 bytes where"),
        ("1111", "not a Monero address"),
    ],
)
def test_rejects_anything_but_a_primary_address(text: str, why: str) -> None:
    with pytest.raises(InvalidAddress, match=why):
        PrimaryAddress.parse(text)


def test_invalid_address_is_a_usage_error_in_the_domain_taxonomy() -> None:
    with pytest.raises(InvalidAddress) as caught:
        PrimaryAddress.parse(None)
    assert isinstance(caught.value, UsageError)
    assert isinstance(caught.value, AnonTicketError)
    assert caught.value.exit_code == 2


@given(st.binary(min_size=8, max_size=8))
def test_any_payment_id_decodes_back(payment_id: bytes) -> None:
    text = integrated_address(PRIMARY, ChainPaymentId(payment_id))
    raw = base58.decode(text)
    assert raw[65:73] == payment_id
    assert raw[73:] == _keccak(raw[:73])[:4]
    assert text[:2] == "4J"
