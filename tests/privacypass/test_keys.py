"""The issuer key file (docs/PROTOCOL.md §12): created once, exclusively, mode 0600, durable; reused;
anything unsafe or not a key refused with an error that names the file and never the key."""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import os
import pickle
import re
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from anon_ticket.errors import PrivateTokenKeyError
from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.spki import key_id, public_key_from_spki
from tests.support.services import need


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


_CREATE_KEY = """
import sys
from pathlib import Path
from anon_ticket.privacypass.keys import IssuerKey
IssuerKey.load_or_create(Path(sys.argv[1]))
"""


def _python(path: Path) -> list[str]:
    return [sys.executable, "-c", _CREATE_KEY, str(path)]


def test_the_new_key_is_synced_before_its_name_appears_and_the_name_after(tmp_path: Path) -> None:
    """The system calls, as strace sees them: the key's bytes reach the disk (fsync of the file) before
    its name exists (link), and the name is made durable (fsync of the directory) before the call
    returns. A power cut can lose the new key, but never leave a named, partial one."""
    strace = need("strace", "scripts/test installs it with apt-get as root")
    folder = tmp_path / "keys"
    folder.mkdir()
    path = folder / "privacy_pass_key.pem"
    trace = tmp_path / "trace"
    result = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=openat,fsync,link,unlink", "-o", str(trace), *_python(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr
    calls = []  # (name, arguments, result), in order
    for line in trace.read_text().splitlines():
        match = re.match(r"\d+ +(\w+)\((.*)\) += (-?\d+)", line)
        if match:
            calls.append((match.group(1), match.group(2), int(match.group(3))))

    def first(after: int, name: str, condition: Callable[[str, int], bool]) -> int:
        return next(i for i, (n, a, r) in enumerate(calls) if i > after and n == name and condition(a, r))

    temporary = first(-1, "openat", lambda a, r: str(folder) in a and "O_EXCL" in a and r >= 0)
    assert calls[temporary][1].endswith("0600")
    file_fd = str(calls[temporary][2])
    file_sync = first(temporary, "fsync", lambda a, r: a == file_fd and r == 0)
    link = first(temporary, "link", lambda a, r: a.endswith(f'"{path}"') and r == 0)
    directory = first(link, "openat", lambda a, r: a.startswith(f'AT_FDCWD, "{folder}", ') and r >= 0)
    directory_sync = first(directory, "fsync", lambda a, r: a == str(calls[directory][2]) and r == 0)
    assert temporary < file_sync < link < directory < directory_sync


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=1200).map(
            lambda body: (
                b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(body) + b"-----END PRIVATE KEY-----\n"
            )
        ),
    )
)
def test_any_file_content_gives_a_key_or_a_key_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "k.pem"
        _write(path, content)
        with contextlib.suppress(PrivateTokenKeyError):
            IssuerKey.load(path)
        assert path.read_bytes() == content


def test_temporary_files_a_crash_left_behind_are_removed_once_stale(tmp_path: Path) -> None:
    """A crash between writing the temporary file and removing it leaves a copy of a private key:
    the next start removes it when it is old, and leaves a fresh one (another node's creation in
    progress) and everything that is not exactly such a file alone."""
    path = tmp_path / "privacy_pass_key.pem"
    stale = tmp_path / ".privacy_pass_key.pem.0123456789abcdef.tmp"
    fresh = tmp_path / ".privacy_pass_key.pem.fedcba9876543210.tmp"
    lookalikes = [
        tmp_path / ".privacy_pass_key.pem.0123456789abcdeg.tmp",
        tmp_path / ".other.pem.0123456789abcdef.tmp",
        tmp_path / "privacy_pass_key.pem.0123456789abcdef.tmp",
    ]
    for file in [stale, fresh, *lookalikes]:
        _write(file, b"a key copy")
    old = time.time() - 3600
    for file in [stale, *lookalikes]:
        os.utime(file, (old, old))
    IssuerKey.load_or_create(path)
    assert not stale.exists()
    assert fresh.exists()
    assert all(file.exists() for file in lookalikes)
