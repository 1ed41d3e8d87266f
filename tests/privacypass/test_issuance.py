"""Issuing and checking type-2 tokens with our own code on both sides (docs/PROTOCOL.md §12), and
every way it refuses: another key, a blinded message out of range, a faulty signing computation, an
issuer's answer that does not verify, a token key in the wrong form."""

from __future__ import annotations

import contextlib
import dataclasses
import pickle

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from anon_ticket.errors import PrivateTokenIssuerAnswer, PrivateTokenMalformed, PrivateTokenSigningFailed
from anon_ticket.privacypass import blindrsa, client, issuer, origin
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.spki import public_key_from_spki, rsassa_pss_spki
from anon_ticket.privacypass.wire import Token, TokenChallenge, TokenRequest

CHALLENGE = TokenChallenge("anon_ticket", b"", ("service.onion",))


@pytest.fixture(scope="module")
def key() -> IssuerKey:
    return IssuerKey.generate()


def test_our_client_our_issuer_our_origin(key: IssuerKey) -> None:
    request, pending = client.prepare(key.spki, CHALLENGE)
    token = pending.finalize(issuer.blind_sign(key, request))
    assert origin.verify_token(key, token, CHALLENGE)
    assert token.token_key_id == key.key_id
    assert token.challenge_digest == CHALLENGE.digest()


def test_the_same_request_twice_gets_the_same_bytes(key: IssuerKey) -> None:
    request, _ = client.prepare(key.spki, CHALLENGE)
    assert issuer.blind_sign(key, request) == issuer.blind_sign(key, request)


def test_every_request_is_fresh(key: IssuerKey) -> None:
    """Two requests for the same challenge share nothing the issuer sees (other than the key id)."""
    (first, one), (second, two) = client.prepare(key.spki, CHALLENGE), client.prepare(key.spki, CHALLENGE)
    assert first.blinded_msg != second.blinded_msg
    assert one.nonce != two.nonce


def test_a_request_for_another_key_is_refused(key: IssuerKey) -> None:
    request, _ = client.prepare(key.spki, CHALLENGE)
    other = TokenRequest((request.truncated_key_id + 1) % 256, request.blinded_msg)
    with pytest.raises(PrivateTokenMalformed, match="key id"):
        issuer.blind_sign(key, other)


@pytest.mark.parametrize("value", ["zero", "n", "n+1", "all ones"])
def test_a_blinded_message_out_of_range_is_refused(key: IssuerKey, value: str) -> None:
    n = key.public_key.public_numbers().n
    m = {"zero": 0, "n": n, "n+1": n + 1, "all ones": 2**2048 - 1}[value]
    request = TokenRequest(key.truncated_key_id, m.to_bytes(256, "big"))
    with pytest.raises(PrivateTokenMalformed, match="between 0 and the modulus"):
        issuer.blind_sign(key, request)


def test_a_faulty_signing_computation_is_caught_not_returned(key: IssuerKey) -> None:
    """A fault in one CRT half (the Bellcore attack: such a value gives away a factor of n) is caught
    by the check with the public exponent."""
    numbers = key._private.private_numbers()
    faulty = blindrsa.PrivateCrt(_with_dmp1(numbers, numbers.dmp1 ^ 2))
    request, _ = client.prepare(key.spki, CHALLENGE)
    with pytest.raises(PrivateTokenSigningFailed, match="not sent"):
        blindrsa.blind_sign(faulty, request.blinded_msg)


def _with_dmp1(numbers: rsa.RSAPrivateNumbers, dmp1: int) -> rsa.RSAPrivateNumbers:
    return rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d, dmp1, numbers.dmq1, numbers.iqmp, numbers.public_numbers
    )


def _answer_of_another_key(blinded_msg: bytes) -> bytes:
    """What a wrong issuer would answer: another key's signature of the same number (reduced below
    that key's modulus, which may be smaller than ours)."""
    other = IssuerKey.generate()
    m = int.from_bytes(blinded_msg, "big") % other.public_key.public_numbers().n
    return blindrsa.blind_sign(other.crt, m.to_bytes(256, "big"))


@pytest.mark.parametrize("answer", ["garbage", "short", "long", "zero", "another key", "other request"])
def test_an_answer_that_does_not_verify_never_becomes_a_token(key: IssuerKey, answer: str) -> None:
    request, pending = client.prepare(key.spki, CHALLENGE)
    wrong = {
        "garbage": lambda: bytes(range(256)),
        "short": lambda: bytes(255),
        "long": lambda: bytes(257),
        "zero": lambda: bytes(256),
        "another key": lambda: _answer_of_another_key(request.blinded_msg),
        "other request": lambda: issuer.blind_sign(key, client.prepare(key.spki, CHALLENGE)[0]),
    }[answer]()
    with pytest.raises(PrivateTokenIssuerAnswer):
        pending.finalize(wrong)


def test_pending_token_hides_its_secrets_and_pickles(key: IssuerKey) -> None:
    request, pending = client.prepare(key.spki, CHALLENGE)
    text = repr(pending)
    assert pending.nonce.hex() not in text
    assert str(pending.blind_inverse) not in text
    assert f"{pending.blind_inverse:x}" not in text
    restored = pickle.loads(pickle.dumps(pending))
    assert origin.verify_token(key, restored.finalize(issuer.blind_sign(key, request)), CHALLENGE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pending.nonce = bytes(32)  # type: ignore[misc]


def test_token_key_in_the_rsa_encryption_form_is_refused(key: IssuerKey) -> None:
    rsa_encryption = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(PrivateTokenMalformed, match="RSASSA-PSS"):
        client.prepare(rsa_encryption, CHALLENGE)


@pytest.mark.parametrize("change", ["trailing byte", "truncated", "other salt", "empty"])
def test_token_key_not_exactly_rfc_9578_is_refused(key: IssuerKey, change: str) -> None:
    spki = key.spki
    bad = {
        "trailing byte": spki + b"\x00",
        "truncated": spki[:-1],
        "other salt": spki.replace(bytes.fromhex("a203020130"), bytes.fromhex("a203020120")),
        "empty": b"",
    }[change]
    with pytest.raises(PrivateTokenMalformed):
        public_key_from_spki(bad)


def test_token_key_of_another_size_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(PrivateTokenMalformed, match="RSA-2048"):
        public_key_from_spki(rsassa_pss_spki(small))


SPKI = IssuerKey.generate().spki
SIGNING_KEY = IssuerKey.generate()


@given(st.binary(max_size=400))
def test_any_bytes_as_a_token_key_give_a_key_or_malformed(data: bytes) -> None:
    with contextlib.suppress(PrivateTokenMalformed):
        public_key_from_spki(data)


@given(st.integers(0, len(SPKI) - 1), st.integers(1, 255))
def test_any_changed_byte_of_the_token_key_is_refused_or_changes_only_the_modulus(
    index: int, change: int
) -> None:
    changed = bytearray(SPKI)
    changed[index] ^= change
    try:
        public = public_key_from_spki(bytes(changed))
    except PrivateTokenMalformed:
        return
    # Only a change inside n's or e's bytes can still be a valid RSA-2048 key in canonical form.
    assert public.public_numbers() != public_key_from_spki(SPKI).public_numbers()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2**2047))
def test_every_blind_signature_is_the_rsa_root_of_its_message(m: int) -> None:
    key = SIGNING_KEY
    n, e = key.public_key.public_numbers().n, key.public_key.public_numbers().e
    signature = issuer.blind_sign(key, TokenRequest(key.truncated_key_id, m.to_bytes(256, "big")))
    assert pow(int.from_bytes(signature, "big"), e, n) == m


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=256, max_size=256), st.binary(min_size=32, max_size=32))
def test_verify_token_answers_false_for_any_forged_authenticator(authenticator: bytes, nonce: bytes) -> None:
    """Our key id and challenge, any authenticator (including numbers at or above n): False, no exception."""
    forged = Token(nonce, CHALLENGE.digest(), SIGNING_KEY.key_id, authenticator)
    assert origin.verify_token(SIGNING_KEY, forged, CHALLENGE) is False


def test_verify_token_answers_false_for_an_all_ones_authenticator() -> None:
    forged = Token(bytes(32), CHALLENGE.digest(), SIGNING_KEY.key_id, b"\xff" * 256)
    assert origin.verify_token(SIGNING_KEY, forged, CHALLENGE) is False


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_finalize_turns_any_answer_into_a_token_or_an_issuer_answer_error(answer: bytes) -> None:
    _, pending = client.prepare(SIGNING_KEY.spki, CHALLENGE)
    with contextlib.suppress(PrivateTokenIssuerAnswer):
        pending.finalize(answer)
