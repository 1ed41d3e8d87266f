"""Our blind RSA and Privacy Pass code reproduces the published test vectors bit for bit.

RFC 9474 Appendix A (RSABSSA variants: encoded message, blinded message, blind signature, final
signature) and RFC 9578's type-2 issuance cases (key, challenge, request, response, token), from
tests/privacypass/data/.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from anon_ticket.privacypass import blindrsa, client, issuer, origin, pss
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import Token, TokenChallenge, TokenRequest, authorization, b64url_encode
from tests.privacypass.vectors import number, rfc9474, rfc9578_type2

RFC9474 = rfc9474()
RFC9578 = rfc9578_type2()


def _numbers(vector: dict[str, Any]) -> rsa.RSAPrivateNumbers:
    p, q, d, e = (number(vector[name]) for name in ("p", "q", "d", "e"))
    public = rsa.RSAPublicNumbers(e, number(vector["n"]))
    return rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )


def _input_msg(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["msg_prefix"] + vector["msg"])


@pytest.mark.parametrize("vector", RFC9474, ids=[v["name"] for v in RFC9474])
def test_rfc9474_blind_sign_gives_the_blind_signature(vector: dict[str, Any]) -> None:
    crt = blindrsa.PrivateCrt(_numbers(vector))
    assert blindrsa.blind_sign(crt, bytes.fromhex(vector["blinded_msg"])).hex() == vector["blind_sig"]


@pytest.mark.parametrize("vector", RFC9474, ids=[v["name"] for v in RFC9474])
def test_rfc9474_client_side_encodes_blinds_and_unblinds(vector: dict[str, Any]) -> None:
    public = _numbers(vector).public_numbers
    salt = bytes.fromhex(vector["salt"])
    encoded = pss.emsa_pss_encode(_input_msg(vector), public.n.bit_length() - 1, salt)
    if "encoded_msg" in vector:
        assert encoded.hex() == vector["encoded_msg"]
    r = pow(number(vector["inv"]), -1, public.n)
    assert blindrsa.blind(public, encoded, r).hex() == vector["blinded_msg"]
    signature = blindrsa.unblind(public, bytes.fromhex(vector["blind_sig"]), number(vector["inv"]))
    assert signature.hex() == vector["sig"]


@pytest.mark.parametrize("vector", RFC9474, ids=[v["name"] for v in RFC9474])
def test_rfc9474_final_signature_is_plain_rsa_pss(vector: dict[str, Any]) -> None:
    """`cryptography`, which knows nothing of blinding, accepts the final signatures."""
    public_key = _numbers(vector).public_numbers.public_key()
    salt_length = len(bytes.fromhex(vector["salt"]))
    public_key.verify(
        bytes.fromhex(vector["sig"]),
        _input_msg(vector),
        padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_length),
        hashes.SHA384(),
    )


def test_rfc8017_pss_vector_for_the_encoding_alone() -> None:
    """EMSA-PSS-ENCODE against the RSA Laboratories PSS vector (SHA-1, 20-byte salt, 1024-bit key;
    as carried by cloudflare/blindrsa-ts test/testdata/emsa_pss_vectors.json)."""
    message = bytes.fromhex(
        "859eef2fd78aca00308bdc471193bf55bf9d78db8f8a672b484634f3c9c26e6478ae10260fe0dd8c082e53a5293af217"
        "3cd50c6d5d354febf78b26021c25c02712e78cd4694c9f469777e451e7f8e9e04cd3739c6bbfedae487fb55644e9ca74"
        "ff77a53cb729802f6ed4a5ffa8ba159890fc"
    )
    salt = bytes.fromhex("e3b5d5d002c1bce50c2b65ef88a188d83bce7e61")
    expected = (
        "66e4672e836ad121ba244bed6576b867d9a447c28a6e66a5b87dee7fbc7e65af5057f86fae8984d9ba7f969ad6fe02a4"
        "d75f7445fefdd85b6d3a477c28d24ba1e3756f792dd1dce8ca94440ecb5279ecd3183a311fc896da1cb39311af37ea4a"
        "75e24bdbfd5c1da0de7cecdf1a896f9d8bc816d97cd7a2c43bad546fbe8cfebc"
    )
    assert pss.emsa_pss_encode(message, 1023, salt, "sha1").hex() == expected


def _issuer_key(vector: dict[str, Any]) -> IssuerKey:
    private = serialization.load_pem_private_key(bytes.fromhex(vector["skS"]), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return IssuerKey(private)


@pytest.mark.parametrize("case", range(len(RFC9578)))
def test_rfc9578_token_key_is_the_rsassa_pss_spki(case: int) -> None:
    assert _issuer_key(RFC9578[case]).spki.hex() == RFC9578[case]["pkS"]


@pytest.mark.parametrize("case", range(len(RFC9578)))
def test_rfc9578_challenge_encodes_as_published(case: int) -> None:
    raw = bytes.fromhex(RFC9578[case]["token_challenge"])
    assert TokenChallenge.decode(raw).encode() == raw


@pytest.mark.parametrize("case", range(len(RFC9578)))
def test_rfc9578_issuer_answers_the_published_response(case: int) -> None:
    vector = RFC9578[case]
    request = TokenRequest.decode(bytes.fromhex(vector["token_request"]))
    assert request.encode().hex() == vector["token_request"]
    assert issuer.blind_sign(_issuer_key(vector), request).hex() == vector["token_response"]


@pytest.mark.parametrize("case", range(len(RFC9578)))
def test_rfc9578_origin_accepts_the_published_token(case: int) -> None:
    vector = RFC9578[case]
    key = _issuer_key(vector)
    challenge = TokenChallenge.decode(bytes.fromhex(vector["token_challenge"]))
    token = Token.decode(bytes.fromhex(vector["token"]))
    assert token.encode().hex() == vector["token"]
    assert origin.verify_token(key, token, challenge)


@pytest.mark.parametrize("case", range(len(RFC9578)))
def test_rfc9578_client_makes_the_published_request_and_token(case: int) -> None:
    vector = RFC9578[case]
    challenge = TokenChallenge.decode(bytes.fromhex(vector["token_challenge"]))
    request, pending = client.prepare_with(
        bytes.fromhex(vector["pkS"]),
        challenge,
        bytes.fromhex(vector["nonce"]),
        bytes.fromhex(vector["salt"]),
        number(vector["blind"]),
    )
    assert request.encode().hex() == vector["token_request"]
    assert pending.finalize(bytes.fromhex(vector["token_response"])).encode().hex() == vector["token"]


def test_rfc9578_tokens_do_not_verify_under_another_challenge_or_key() -> None:
    first, second = RFC9578[0], RFC9578[1]
    token = Token.decode(bytes.fromhex(first["token"]))
    own_challenge = TokenChallenge.decode(bytes.fromhex(first["token_challenge"]))
    other_challenge = TokenChallenge.decode(bytes.fromhex(second["token_challenge"]))
    assert not origin.verify_token(_issuer_key(first), token, other_challenge)
    assert not origin.verify_token(IssuerKey.generate(), token, own_challenge)


def test_the_worked_example_of_the_protocol_document() -> None:
    """docs/PROTOCOL.md §12 walks through the fourth RFC 9578 case with these values."""
    vector = RFC9578[3]
    challenge = TokenChallenge.decode(bytes.fromhex(vector["token_challenge"]))
    assert challenge == TokenChallenge("issuer.example", b"", ())
    assert b64url_encode(challenge.encode()) == "AAIADmlzc3Vlci5leGFtcGxlAAAA"
    assert challenge.digest().hex() == "b741ec1b6fd05f1e95f8982906aec1612896d9ca97d53eef94ad3c9fe023f7a4"
    key = _issuer_key(vector)
    assert len(key.spki) == 342
    assert key.key_id.hex() == "ca572f8982a9ca248a3056186322d93ca147266121ddeb5632c07f1f71cd2708"
    assert vector["nonce"].startswith("494dae41") and vector["nonce"].endswith("40bfe8e6")
    assert vector["token_request"].startswith("000208244840")
    assert vector["token_response"].startswith("c2746ff644cffb28")
    token = Token.decode(bytes.fromhex(vector["token"]))
    assert token.encode().hex().startswith("0002494dae41")
    assert authorization(token).startswith('PrivateToken token="AAJJTa5B')
