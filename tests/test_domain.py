"""docs/PROTOCOL.md §2: the byte-level definitions and their vectors, plus what parsing must refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.core.domain import ChainPaymentId, PaymentId, ServiceToken, TxId
from anon_ticket.errors import InvalidHex, InvalidPid, InvalidToken

PID_ONE = PaymentId(bytes(31) + b"\x01")
PID_A3 = PaymentId(b"\xa3" * 32)


def test_payment_id_vectors() -> None:
    assert PID_ONE.chain_payment_id().hex() == "64c1f13de004fb79"
    assert PID_A3.chain_payment_id().hex() == "43e27509eb504ae9"


def test_token_vectors() -> None:
    token = PID_ONE.service_token(TxId(bytes(range(32))))
    assert token.hex() == "cc26cd8284acddaed0d7e7065401f5d41eb23007330e4eac74fb7e5943ce5649"
    token = PID_A3.service_token(TxId(b"\x5c" * 32))
    assert token.hex() == "ad850f91d86e98771caed1e9f2c8839cedab99896901295982a28626328cedfd"
    assert token.digest().raw.hex() == "50d7db882f78df4fb68aa385ea41e561690ce82c91fc82b89874cb8c6f2df8bf"


def test_pid_text_is_normalised_to_lowercase() -> None:
    assert PaymentId.parse("A3" * 32) == PID_A3
    assert PaymentId.parse("A3" * 32).hex() == "a3" * 32


@given(st.binary(min_size=32, max_size=32))
def test_pid_round_trips(raw: bytes) -> None:
    pid = PaymentId(raw)
    assert PaymentId.parse(pid.hex()) == pid
    assert PaymentId.parse(pid.hex().upper()) == pid


@given(st.binary(min_size=32, max_size=32))
def test_token_round_trips(raw: bytes) -> None:
    token = ServiceToken(raw)
    assert ServiceToken.parse(token.hex()) == token


MALFORMED = [
    "",
    "00" * 31,
    "00" * 33,
    "0" * 63,
    "0x" + "00" * 31,
    " " + "00" * 32,
    "00" * 32 + "\n",
    "00" * 31 + " 0",
    "g" + "0" * 63,
    "٠" * 64,  # ARABIC-INDIC DIGIT ZERO: str.isdigit() says yes, hex says no
    "０" * 64,  # FULLWIDTH DIGIT ZERO
    "00" * 16 + "-" + "0" * 31,
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_pid_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidPid):
        PaymentId.parse(text)


@pytest.mark.parametrize("value", [None, 1, 1.5, ["00" * 32], {"pid": "00" * 32}, b"00" * 32, True])
def test_non_string_pid_is_refused(value: object) -> None:
    with pytest.raises(InvalidPid):
        PaymentId.parse(value)


@given(
    st.text(max_size=80).filter(
        lambda s: not (len(s) == 64 and all(c in "0123456789abcdefABCDEF" for c in s))
    )
)
def test_anything_but_64_hex_is_refused(text: str) -> None:
    with pytest.raises(InvalidPid):
        PaymentId.parse(text)
    with pytest.raises(InvalidToken):
        ServiceToken.parse(text)


def test_wrong_lengths_of_raw_bytes_are_programming_errors() -> None:
    with pytest.raises(TypeError):
        PaymentId(b"\x00" * 31)
    with pytest.raises(TypeError):
        ChainPaymentId(b"\x00" * 32)
    with pytest.raises(TypeError):
        TxId("00" * 32)  # type: ignore[arg-type]


def test_txid_and_chain_payment_id_parse_strictly() -> None:
    assert TxId.parse("AB" * 32).hex() == "ab" * 32
    assert ChainPaymentId.parse("64c1f13de004fb79").raw == bytes.fromhex("64c1f13de004fb79")
    with pytest.raises(InvalidHex):
        TxId.parse("ab" * 31)


def test_secrets_do_not_show_in_repr() -> None:
    token = PID_A3.service_token(TxId(b"\x5c" * 32))
    assert "a3" * 4 not in repr(PID_A3)
    assert token.hex()[:12] not in repr(token)
    assert "a3a3" not in f"{PID_A3!r} {[PID_A3]}"


def test_generate_makes_distinct_pids() -> None:
    assert len({PaymentId.generate() for _ in range(1000)}) == 1000
