"""The issuer key as the real daemon uses it (docs/PROTOCOL.md §12): created on the first start beside
the database with mode 0600, kept across restarts, published as the token key, named in the log only
by its path and key id; a key file that others can access stops the start with a clear message."""

from __future__ import annotations

import json
import stat
import urllib.request
from pathlib import Path

from anon_ticket.privacypass.keys import IssuerKey
from anon_ticket.privacypass.wire import b64url_encode
from tests.support.daemon import DaemonProcess
from tests.support.fake_wallet import FakeWallet

KEY_FILE = "privacy_pass_key.pem"
START_TIMEOUT_SECS = 90.0


def _published_token_key(daemon: DaemonProcess) -> str:
    with urllib.request.urlopen(f"{daemon.public_url}/api/v1/info", timeout=10) as answer:
        info = json.load(answer)
    return str(info["private_token"]["token_key"])


def _private_texts(key: IssuerKey) -> list[str]:
    numbers = key._private.private_numbers()
    values = (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp)
    return [str(v) for v in values] + [f"{v:x}" for v in values]


def test_the_daemon_creates_keeps_and_publishes_the_key_and_never_logs_it(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    with FakeWallet() as wallet:
        daemon = DaemonProcess(tmp_path, wallet_url=wallet.url)
        # A first start also generates the RSA key: give a loaded machine time for it.
        with daemon.start(timeout=START_TIMEOUT_SECS):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            key = IssuerKey.load(path)
            assert _published_token_key(daemon) == b64url_encode(key.spki), daemon.log_tail()
        with daemon.start(timeout=START_TIMEOUT_SECS):
            assert _published_token_key(daemon) == b64url_encode(key.spki), daemon.log_tail()  # kept
    log = daemon.log_text()
    assert key.key_id.hex()[:16] in log, log
    assert str(path) in log, log
    pem_lines = [line for line in path.read_text().splitlines() if "-----" not in line]
    leaked = [secret[:12] for secret in [*_private_texts(key), *pem_lines] if secret in log]
    assert not leaked


def test_a_key_file_others_can_read_stops_the_start_naming_the_file_not_the_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    key = IssuerKey.load_or_create(path)
    path.chmod(0o644)
    with FakeWallet() as wallet:
        daemon = DaemonProcess(tmp_path, wallet_url=wallet.url)
        daemon.start(wait=False)
        assert daemon.wait_exit(timeout=START_TIMEOUT_SECS) != 0
    log = daemon.log_text()
    assert str(path) in log and "chmod 600" in log, log
    assert "Traceback" not in log, log
    pem_lines = [line for line in path.read_text().splitlines() if "-----" not in line]
    leaked = [secret[:12] for secret in [*_private_texts(key), *pem_lines] if secret in log]
    assert not leaked
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # refused, not changed
