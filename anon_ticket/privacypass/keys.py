"""The issuer's RSA-2048 key: created once in a file of its own (never in the database), read at start.

The file is PKCS#8 PEM, mode 0600. It is created exclusively and whole: the PEM is written and fsynced
into a fresh temporary file of the same directory, then hard-linked to its name, which fails if the
name exists. So two nodes starting at once on a shared directory end up with one key, and a reader
never sees half a key. An existing file is only read; a file that group or others have access to, or that
holds anything but an unencrypted RSA-2048 key, is refused with an error naming the path and never
the key. Nothing here ever puts the private numbers into a repr, a log line or an exception.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from anon_ticket.errors import PrivateTokenKeyError
from anon_ticket.privacypass.blindrsa import PrivateCrt
from anon_ticket.privacypass.spki import KEY_BITS, key_id, rsassa_pss_spki
from anon_ticket.process.durable import sync_directory

PUBLIC_EXPONENT = 65537
FILE_MODE = 0o600
# A 2048-bit PKCS#8 PEM is ~1.7 kB; a larger file is not ours and is not read whole.
MAX_FILE_BYTES = 16 * 1024
# The temporary file a creation writes before linking it: `.NAME.<16 hex>.tmp` in the same directory.
TEMPORARY_TAG_BYTES = 8
# A creation takes milliseconds; a temporary file older than this was left by a crash.
STALE_TEMPORARY_SECS = 600.0


class IssuerKey:
    """The issuer's signing key and its public token key (SPKI with the RSASSA-PSS identifier)."""

    __slots__ = ("_crt", "_key_id", "_private", "_public", "_spki")

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        """From a `cryptography` RSA-2048 key; `load_or_create`/`load` are how the daemon gets one."""
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size != KEY_BITS:
            raise PrivateTokenKeyError(f"the issuer key must be RSA-{KEY_BITS}")
        self._private = private_key
        self._public = private_key.public_key()
        self._crt = PrivateCrt(private_key.private_numbers())
        self._spki = rsassa_pss_spki(self._public)
        self._key_id = key_id(self._spki)

    @classmethod
    def generate(cls) -> IssuerKey:
        """A new random key (RSA-2048, e = 65537), in memory only."""
        return cls(rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS))

    @classmethod
    def load(cls, path: Path) -> IssuerKey:
        """The key in `path`; `PrivateTokenKeyError` if it is missing, readable by others or not a key."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise PrivateTokenKeyError(f"issuer key file {path} does not exist") from None
        except OSError as exc:
            raise PrivateTokenKeyError(f"issuer key file {path} cannot be opened: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise PrivateTokenKeyError(f"issuer key file {path} is not a regular file")
            if info.st_mode & 0o077:
                raise PrivateTokenKeyError(
                    f"issuer key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or others have"
                    f" access to it; make it {FILE_MODE:04o} (chmod 600 {path})"
                )
            if info.st_size > MAX_FILE_BYTES:
                raise PrivateTokenKeyError(f"issuer key file {path} is too large to be an RSA-{KEY_BITS} key")
            with os.fdopen(os.dup(fd), "rb") as stream:
                pem = stream.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise PrivateTokenKeyError(f"issuer key file {path} cannot be read: {exc.strerror}") from None
        finally:
            os.close(fd)
        return cls(_parse_pem(pem, path))

    @classmethod
    def load_or_create(cls, path: Path) -> IssuerKey:
        """The key in `path`, created there first (exclusively, mode 0600, durable) if there is none.

        Temporary files of an earlier creation that a crash left behind (each a copy of a private key)
        are removed first, once they are older than any creation in progress could be."""
        _remove_stale_temporaries(path)
        if not os.path.lexists(path):
            key = cls.generate()
            if key._create(path):
                return key
            # Another process created it between our check and our link: use theirs.
        return cls.load(path)

    def _create(self, path: Path) -> bool:
        """Write this key to `path` unless something is there; False if something was."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        directory = path.parent
        temporary = directory / f".{path.name}.{secrets.token_hex(TEMPORARY_TAG_BYTES)}.tmp"
        try:
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
            )
        except OSError as exc:
            raise PrivateTokenKeyError(f"issuer key file {path} cannot be created: {exc.strerror}") from None
        try:
            try:
                os.fchmod(fd, FILE_MODE)
                written = 0
                while written < len(pem):
                    written += os.write(fd, pem[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
        except OSError as exc:
            raise PrivateTokenKeyError(f"issuer key file {path} cannot be written: {exc.strerror}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        sync_directory(directory)
        return True

    @property
    def spki(self) -> bytes:
        """The token key as published: DER SubjectPublicKeyInfo with the RSASSA-PSS identifier."""
        return self._spki

    @property
    def key_id(self) -> bytes:
        """SHA-256 of `spki`: the `token_key_id` of every token signed with this key."""
        return self._key_id

    @property
    def truncated_key_id(self) -> int:
        """The last byte of `key_id`, which a TokenRequest names."""
        return self._key_id[-1]

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def crt(self) -> PrivateCrt:
        """The private values for `blindrsa.blind_sign` (the issuer module's business only)."""
        return self._crt

    def __repr__(self) -> str:
        return f"IssuerKey(key_id={self._key_id.hex()})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("the issuer key is never pickled or copied")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove `path`'s own temporary files (exactly `.NAME.<hex>.tmp`) older than STALE_TEMPORARY_SECS."""
    pattern = re.compile(
        re.escape(f".{path.name}.") + f"[0-9a-f]{{{2 * TEMPORARY_TAG_BYTES}}}" + re.escape(".tmp")
    )
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return  # the directory's trouble is reported when the key itself is read or created
    now = time.time()
    removed = False
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        with contextlib.suppress(OSError):
            if (
                entry.is_file(follow_symlinks=False)
                and now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMPORARY_SECS
            ):
                os.unlink(entry.path)
                removed = True
    if removed:
        sync_directory(path.parent)


def _parse_pem(pem: bytes, path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise PrivateTokenKeyError(
            f"issuer key file {path} holds an encrypted key; it must be unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # The library's message is not repeated: it is about the file's content.
        raise PrivateTokenKeyError(f"issuer key file {path} does not hold a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateTokenKeyError(f"issuer key file {path} holds a key that is not RSA")
    if key.key_size != KEY_BITS:
        raise PrivateTokenKeyError(
            f"issuer key file {path} holds an RSA-{key.key_size} key; RSA-{KEY_BITS} is required"
        )
    return key
