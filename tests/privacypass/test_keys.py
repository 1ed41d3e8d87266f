"""The issuer key file (docs/PROTOCOL.md §12): created once, exclusively, mode 0600, durable; reused;
anything unsafe or not a key refused with an error that names the file and never the key."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from anon_ticket.errors import PrivateTokenKeyError
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.spki import key_id, public_key_from_spki


def _secrets_of(key: IssuerKey) -> list[str]:
    """The private numbers in the forms they could leak in (decimal and hex)."""
    numbers = key._private.private_numbers()
    values = (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp)
    return [str(v) for v in values] + [f"{v:x}" for v in values]


def _pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_first_start_creates_a_0600_rsa_2048_key_and_the_next_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "privacy_pass_key.pem"
    created = IssuerKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert created.public_key.key_size == 2048
    assert created.public_key.public_numbers().e == 65537
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    again = IssuerKey.load_or_create(path)
    assert again.spki == created.spki
    assert IssuerKey.load(path).key_id == created.key_id


def test_the_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        IssuerKey.load_or_create(tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_public_identity_is_the_rfc_9578_form(tmp_path: Path) -> None:
    key = IssuerKey.load_or_create(tmp_path / "k.pem")
    assert key.key_id == key_id(key.spki)
    assert key.truncated_key_id == key.key_id[-1]
    assert public_key_from_spki(key.spki).public_numbers() == key.public_key.public_numbers()


def _create_in_child(path: str, queue: multiprocessing.Queue[bytes]) -> None:
    queue.put(IssuerKey.load_or_create(Path(path)).spki)


def test_two_processes_starting_at_once_end_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[bytes] = context.Queue()
    children = [context.Process(target=_create_in_child, args=(str(path), queue)) for _ in range(4)]
    for child in children:
        child.start()
    spkis = {queue.get(timeout=60) for _ in children}
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert spkis == {IssuerKey.load(path).spki}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o601])
def test_a_key_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    IssuerKey.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(PrivateTokenKeyError, match=f"{path}.*mode {mode:04o}.*chmod 600"):
        IssuerKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # refused, not "fixed" behind the operator's back


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "does not hold a PEM private key"),
        (b"garbage\n", "does not hold a PEM private key"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "does not hold a PEM private key",
        ),
        (b"x" * 20000, "too large"),
    ],
)
def test_garbage_is_refused_and_kept(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "k.pem"
    _write(path, content)
    with pytest.raises(PrivateTokenKeyError, match=message) as caught:
        IssuerKey.load_or_create(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content


def test_another_key_size_or_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    _write(path, _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(PrivateTokenKeyError, match="RSA-1024 key; RSA-2048 is required"):
        IssuerKey.load(path)
    _write(path, _pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(PrivateTokenKeyError, match="not RSA"):
        IssuerKey.load(path)


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    _write(path, encrypted)
    with pytest.raises(PrivateTokenKeyError, match="encrypted"):
        IssuerKey.load(path)


def test_missing_directory_symlink_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PrivateTokenKeyError, match="cannot be created"):
        IssuerKey.load_or_create(tmp_path / "no" / "k.pem")
    with pytest.raises(PrivateTokenKeyError, match="does not exist"):
        IssuerKey.load(tmp_path / "absent.pem")
    real = tmp_path / "real.pem"
    IssuerKey.load_or_create(real)
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(PrivateTokenKeyError, match="cannot be opened"):
        IssuerKey.load_or_create(link)
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    with pytest.raises(PrivateTokenKeyError, match="not a regular file"):
        IssuerKey.load(folder)


def test_the_private_numbers_never_show(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = IssuerKey.load_or_create(path)
    shown = [repr(key), str(key), repr(key.crt), str(key.crt), f"{key!r} {key}"]
    path.chmod(0o644)
    with pytest.raises(PrivateTokenKeyError) as caught:
        IssuerKey.load(path)
    shown += [str(caught.value), repr(caught.value)]
    for text in shown:
        for secret in _secrets_of(key):
            assert secret not in text
        assert "PRIVATE KEY" not in text
    assert repr(key) == f"IssuerKey(key_id={key.key_id.hex()})"
    for value in (key, key.crt):
        with pytest.raises(TypeError, match="never pickled"):
            pickle.dumps(value)


def test_a_key_file_with_a_pem_others_cannot_read_is_not_quoted_when_bad(tmp_path: Path) -> None:
    """A truncated real key: the error names the file, not the bytes that are there."""
    path = tmp_path / "k.pem"
    pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _write(path, pem[: len(pem) // 2])
    with pytest.raises(PrivateTokenKeyError) as caught:
        IssuerKey.load(path)
    body = pem.split(b"\n")[3].decode()
    assert body not in str(caught.value)
