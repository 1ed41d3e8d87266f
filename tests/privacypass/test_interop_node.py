"""Interoperability with the reference implementation, `@cloudflare/privacypass-ts` 0.8.1 in node
(pinned in web/package-lock.json; docs/PROTOCOL.md §12).

Its client gets tokens from our issuer that its origin and ours accept; our client's tokens pass its
origin; its and our header codecs read each other; the token key we publish is what it expects.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from anon_ticket.privacypass import client, issuer, origin
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.spki import key_id, public_key_from_spki
from anon_ticket.privacypass.wire import (
    Token,
    TokenChallenge,
    TokenRequest,
    authorization,
    parse_authorization,
    www_authenticate,
)
from tests.support.privacypass_node import ReferenceImplementation, ReferenceThrew

CHALLENGES = [
    TokenChallenge("anon_ticket", b"", ()),
    TokenChallenge("anon_ticket", b"", ("search.example.onion",)),
    TokenChallenge("issuer.example", bytes(range(32)), ("a.example", "b.example")),
]


@pytest.fixture
def reference(privacypass_reference: ReferenceImplementation) -> ReferenceImplementation:
    return privacypass_reference


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> IssuerKey:
    return IssuerKey.load_or_create(tmp_path_factory.mktemp("key") / "privacy_pass_key.pem")


@pytest.mark.parametrize("challenge", CHALLENGES, ids=["empty origins", "one origin", "context"])
def test_their_client_our_issuer_their_and_our_origin(
    reference: ReferenceImplementation, key: IssuerKey, challenge: TokenChallenge
) -> None:
    client_id, raw_request = reference.request(challenge.encode(), key.spki)
    response = issuer.blind_sign(key, TokenRequest.decode(raw_request))
    raw_token = reference.finalize(client_id, response)
    assert reference.verify(raw_token, key.spki)
    token = Token.decode(raw_token)
    assert origin.verify_token(key, token, challenge)
    assert token.token_key_id == key.key_id
    assert token.challenge_digest == challenge.digest()


def test_their_request_twice_gets_the_same_signature(
    reference: ReferenceImplementation, key: IssuerKey
) -> None:
    _, raw_request = reference.request(CHALLENGES[0].encode(), key.spki)
    request = TokenRequest.decode(raw_request)
    assert issuer.blind_sign(key, request) == issuer.blind_sign(key, request)


@pytest.mark.parametrize("challenge", CHALLENGES, ids=["empty origins", "one origin", "context"])
def test_our_client_our_issuer_their_origin(
    reference: ReferenceImplementation, key: IssuerKey, challenge: TokenChallenge
) -> None:
    request, pending = client.prepare(key.spki, challenge)
    token = pending.finalize(issuer.blind_sign(key, request))
    assert reference.verify(token.encode(), key.spki)


def test_our_client_their_issuer_their_and_our_verification(reference: ReferenceImplementation) -> None:
    """Our client works with any RFC 9578 issuer: their key's SPKI parses as the exact RFC 9578 form."""
    issuer_id, token_key = reference.new_issuer()
    public_key = public_key_from_spki(token_key)
    request, pending = client.prepare(token_key, CHALLENGES[1])
    token = pending.finalize(reference.issue(issuer_id, request.encode()))
    assert reference.verify(token.encode(), token_key)
    assert origin.verify_signature(public_key, token.authenticator, token.authenticator_input())
    assert token.token_key_id == key_id(token_key)


def test_their_origin_refuses_a_token_of_another_key_or_a_changed_one(
    reference: ReferenceImplementation, key: IssuerKey
) -> None:
    request, pending = client.prepare(key.spki, CHALLENGES[0])
    token = pending.finalize(issuer.blind_sign(key, request)).encode()
    assert not reference.verify(token, IssuerKey.generate().spki)
    flipped = bytearray(token)
    flipped[10] ^= 1  # a nonce bit: the signature no longer covers it
    assert not reference.verify(bytes(flipped), key.spki)


def test_their_client_refuses_an_answer_that_does_not_verify(
    reference: ReferenceImplementation, key: IssuerKey
) -> None:
    client_id, _ = reference.request(CHALLENGES[0].encode(), key.spki)
    _, other_request = reference.request(CHALLENGES[0].encode(), key.spki)
    wrong = issuer.blind_sign(key, TokenRequest.decode(other_request))
    with pytest.raises(ReferenceThrew):
        reference.finalize(client_id, wrong)


def test_the_token_key_is_what_webcrypto_imports_after_their_conversion(
    reference: ReferenceImplementation, key: IssuerKey
) -> None:
    """Their convertRSASSAPSSToEnc of our token key is exactly our key in the rsaEncryption form."""
    expected = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert reference.rsa_encryption_spki(key.spki) == expected


@pytest.mark.parametrize("challenge", CHALLENGES, ids=["empty origins", "one origin", "context"])
def test_they_read_our_www_authenticate(
    reference: ReferenceImplementation, key: IssuerKey, challenge: TokenChallenge
) -> None:
    assert reference.parse_www_authenticate(www_authenticate(challenge, key.spki)) == (
        challenge.encode(),
        key.spki,
    )


def test_authorization_headers_read_both_ways(reference: ReferenceImplementation, key: IssuerKey) -> None:
    request, pending = client.prepare(key.spki, CHALLENGES[1])
    token = pending.finalize(issuer.blind_sign(key, request))
    assert reference.parse_authorization(authorization(token)) == token.encode()
    assert parse_authorization(reference.authorization(token.encode())) == token


def test_the_installed_reference_is_the_pinned_one(reference: ReferenceImplementation) -> None:
    assert reference.version() == "0.8.1"
