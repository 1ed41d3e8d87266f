"""docs/PROTOCOL.md §5 against the real daemon process: authentication, token records, revocation, status.

Black-box on purpose: `python -m anon_ticket` runs as a child process against the fake wallet, so
what is tested is what an operator runs, including the split into two listeners, crash durability
(SIGKILL) and the generated internal token file.
"""

from __future__ import annotations

import calendar
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anon_ticket import __version__
from anon_ticket.core.domain import PaymentId
from tests.support.daemon import (
    DaemonProcess,
    claim_token,
    redeem_until,
    unix_request,
)
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.support.waiting import wait_for

UNKNOWN_TOKEN = "ab" * 32


wallet = module_wallet()


@pytest.fixture(scope="module")
def claimed(daemon: DaemonProcess, wallet: FakeWallet) -> tuple[PaymentId, str]:
    """A token nobody revokes in this module."""
    return claim_token(daemon, wallet)


def _revoke(daemon: DaemonProcess, token: str, **kwargs: object) -> requests.Response:
    return daemon.internal("POST", f"/api/v1/token/{token}/revoke", **kwargs)


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/status"),
        ("GET", f"/api/v1/token/{UNKNOWN_TOKEN}"),
        ("GET", "/api/v1/token/not-a-token"),
        ("POST", f"/api/v1/token/{UNKNOWN_TOKEN}/revoke"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/no/such/path"),
        ("DELETE", "/api/v1/status"),
        ("POST", "/api/v1/redeem"),
        ("GET", "/api/v1"),
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789abcdef",
        "Basic dXNlcjpwYXNz",
        "Token {token}",
        "{token}",
        "Bearer {token}x",
        "Bearer {short}",
        "Bearer {upper}",
        "Bearer\t{token}",
        "Bearer{token}",
    ],
)
def test_401_before_anything_else(
    daemon: DaemonProcess, method: str, path: str, authorization: str | None
) -> None:
    headers = {}
    if authorization is not None:
        api_token = daemon.api_token
        headers["Authorization"] = authorization.format(
            token=api_token, short=api_token[:-1], upper=api_token.upper()
        )
    response = daemon.internal(method, path, auth=False, headers=headers, data=b"x" * 10)
    assert response.status_code == 401, response.text
    assert response.json() == {
        "error": "unauthorized",
        "message": response.json()["message"],
    }
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "BEARER {}", "Bearer   {}", "bEaReR {}"])
def test_bearer_scheme_is_case_insensitive_and_allows_extra_spaces(
    daemon: DaemonProcess, template: str
) -> None:
    """RFC 7235: the scheme is case-insensitive; RFC 6750: `Bearer 1*SP token`. The token itself is exact."""
    response = daemon.internal(
        "GET", "/api/v1/status", auth=False, headers={"Authorization": template.format(daemon.api_token)}
    )
    assert response.status_code == 200, response.text


def test_unrevoked_token_stays_active_after_unauthorized_revoke(
    daemon: DaemonProcess, claimed: tuple[PaymentId, str]
) -> None:
    _, token = claimed
    response = daemon.internal(
        "POST", f"/api/v1/token/{token}/revoke", auth=False, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert daemon.internal("GET", f"/api/v1/token/{token}").json()["status"] == "active"


def test_healthz_needs_no_auth(daemon: DaemonProcess) -> None:
    response = daemon.internal("GET", "/healthz", auth=False)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert daemon.internal("POST", "/healthz", auth=False).status_code == 405


# -- token records ----------------------------------------------------------------------------


def test_token_record(daemon: DaemonProcess, claimed: tuple[PaymentId, str]) -> None:
    pid, token = claimed
    response = daemon.internal("GET", f"/api/v1/token/{token}")
    assert response.status_code == 200, response.text
    record = response.json()
    assert set(record) == {
        "token",
        "status",
        "amount",
        "issued_at",
        "revoked_at",
        "revoke_reason",
        "private_tokens",  # docs/PROTOCOL.md §12
    }
    assert record["private_tokens"] == {"allowance": 100, "issued": 0}
    assert record["token"] == token
    assert record["status"] == "active"
    assert record["amount"] == daemon.min_payment_amount
    assert record["revoked_at"] is None and record["revoke_reason"] is None
    replay = daemon.redeem(pid).json()
    assert replay["status"] == "already_claimed"
    assert record["issued_at"] == replay["claimed_at"]
    assert time.strptime(record["issued_at"], "%Y-%m-%dT%H:%M:%SZ")
    # Either case is accepted in the path; the answer is lowercase.
    upper = daemon.internal("GET", f"/api/v1/token/{token.upper()}")
    assert upper.status_code == 200 and upper.json()["token"] == token


def test_token_not_found_and_invalid(daemon: DaemonProcess) -> None:
    missing = daemon.internal("GET", f"/api/v1/token/{UNKNOWN_TOKEN}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "token_not_found"
    for bad in ["abc", "g" * 64, "a" * 63, "a" * 65, "0x" + "a" * 62, "%20" + "a" * 64]:
        response = daemon.internal("GET", f"/api/v1/token/{bad}")
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"] == "invalid_token"


def test_methods_on_token_paths(daemon: DaemonProcess, claimed: tuple[PaymentId, str]) -> None:
    _, token = claimed
    post = daemon.internal("POST", f"/api/v1/token/{token}")
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"
    assert post.json()["error"] == "method_not_allowed"
    get = daemon.internal("GET", f"/api/v1/token/{token}/revoke")
    assert get.status_code == 405 and get.headers["Allow"] == "POST"
    status = daemon.internal("POST", "/api/v1/status")
    assert status.status_code == 405 and status.headers["Allow"] == "GET, HEAD"


# -- revocation --------------------------------------------------------------------------------


def test_revoke_keeps_first_time_and_reason_and_redeem_answers_410(
    daemon: DaemonProcess, wallet: FakeWallet
) -> None:
    pid, token = claim_token(daemon, wallet)
    first = _revoke(daemon, token, json={"reason": "chargeback requested"})
    assert first.status_code == 200, first.text
    record = first.json()
    assert record["status"] == "revoked"
    assert record["revoke_reason"] == "chargeback requested"
    assert record["revoked_at"] is not None
    revoked_at = calendar.timegm(time.strptime(record["revoked_at"], "%Y-%m-%dT%H:%M:%SZ"))
    # Let the clock pass a whole second so that a rewritten revoked_at would show.
    wait_for("the next second", lambda: True if time.time() >= revoked_at + 1 else None, 3)
    again = _revoke(daemon, token, json={"reason": "a different reason"})
    assert again.status_code == 200
    assert again.json() == record
    assert _revoke(daemon, token).json() == record
    assert daemon.internal("GET", f"/api/v1/token/{token}").json() == record

    refused = daemon.redeem(pid)
    assert refused.status_code == 410
    assert refused.json() == {
        "error": "token_revoked",
        "message": refused.json()["message"],
        "reason": "revoked",
    }


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, "revoked"),
        ({"json": {}}, "revoked"),
        ({"json": {"reason": None}}, "revoked"),
        ({"json": {"reason": "r" * 256}}, "r" * 256),
        ({"json": {"reason": "é" * 256, "unknown": 1}}, "é" * 256),
        ({"data": b"", "headers": {"Content-Type": "application/json"}}, "revoked"),
    ],
    ids=["no-body", "empty-object", "null-reason", "256-ascii", "256-non-ascii", "empty-json-body"],
)
def test_revoke_reason_forms(
    daemon: DaemonProcess, wallet: FakeWallet, kwargs: dict[str, object], reason: str
) -> None:
    _, token = claim_token(daemon, wallet)
    response = _revoke(daemon, token, **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["revoke_reason"] == reason


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"reason": "r" * 257}}, 400, "invalid_request"),
        ({"json": {"reason": 12}}, 400, "invalid_request"),
        ({"json": ["reason"]}, 400, "invalid_request"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
        ({"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"json": {"reason": "x" * 5000}}, 413, "payload_too_large"),
    ],
    ids=["257-chars", "not-a-string", "not-an-object", "not-json", "text-plain", "over-4096-bytes"],
)
def test_revoke_refuses_bad_bodies(
    daemon: DaemonProcess,
    claimed: tuple[PaymentId, str],
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    _, token = claimed
    response = _revoke(daemon, token, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert daemon.internal("GET", f"/api/v1/token/{token}").json()["status"] == "active"


def test_revoke_unknown_or_invalid_token(daemon: DaemonProcess) -> None:
    unknown = _revoke(daemon, UNKNOWN_TOKEN, json={"reason": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "token_not_found"
    invalid = _revoke(daemon, "xyz")
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid_token"


# -- status ----------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_status_has_exactly_the_contract_fields(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    before = daemon.status()
    claim_token(daemon, wallet)
    status = daemon.status()
    assert set(status) == {
        "version",
        "actors",
        "wallet",
        "scan_cursor",
        "payments",
        "tokens",
        "abuse_level",
        "node",
        "storage",
    }
    assert status["version"] == __version__
    # One node on SQLite, which always polls (docs/PROTOCOL.md §11), and has no connection pool.
    assert status["node"] == {"id": f"{socket.gethostname()}:{daemon.pid}", "role": "leader"}
    assert status["storage"] == {"pool": None}
    assert set(status["actors"]) == {"storage_writer", "pid_cache", "abuse_metrics", "wallet_poller"}
    for actor in status["actors"].values():
        assert set(actor) == {"state", "restarts"}
        assert actor["state"] == "running"
        assert _is_int(actor["restarts"])
    assert set(status["wallet"]) == {
        "height",
        "primary_address",
        "last_poll_at",
        "last_error",
        "stale",
        "last_success_at",
    }
    assert status["wallet"]["height"] == wallet.height
    assert status["wallet"]["primary_address"] == wallet.address
    assert time.strptime(status["wallet"]["last_poll_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert status["wallet"]["last_error"] is None
    assert status["wallet"]["stale"] is False
    assert time.strptime(status["wallet"]["last_success_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert _is_int(status["scan_cursor"])
    assert set(status["payments"]) == {"pending", "redeemable", "claimed"}
    assert all(_is_int(v) for v in status["payments"].values())
    assert set(status["tokens"]) == {"active", "revoked"}
    assert all(_is_int(v) for v in status["tokens"].values())
    assert status["abuse_level"] in ("normal", "elevated", "under_attack")
    assert status["payments"]["claimed"] == before["payments"]["claimed"] + 1
    assert status["tokens"]["active"] == before["tokens"]["active"] + 1


# -- the two listeners -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/status",
        f"/api/v1/token/{UNKNOWN_TOKEN}",
        "/api/v1/rescan",
        "/api/v1/openapi.json",
        "/healthz",
        "/admin/",
        # "/" on the public listener is the buyer's page (docs/PROTOCOL.md §10, tests/test_buyer_page.py).
    ],
)
def test_public_listener_does_not_serve_internal_paths(daemon: DaemonProcess, path: str) -> None:
    response = daemon.public("GET", path, headers=daemon.auth_headers())
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v1/redeem"), ("GET", "/api/v1/info")])
def test_internal_listener_does_not_serve_public_paths(daemon: DaemonProcess, method: str, path: str) -> None:
    assert daemon.internal(method, path, auth=False, json={"pid": "a" * 64}).status_code == 401
    response = daemon.internal(method, path, json={"pid": "a" * 64})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


def test_no_token_reaches_the_log(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    pid, token = claim_token(daemon, wallet)
    daemon.internal("GET", f"/api/v1/token/{token}")
    daemon.internal("GET", f"/api/v1/token/{token.upper()}")
    _revoke(daemon, token, json={"reason": "log check"})
    daemon.internal("GET", f"/api/v1/token/{token}x")  # 400, not token-shaped
    daemon.internal("GET", f"/api/v1/token/{token}", auth=False)  # 401
    daemon.redeem(pid)
    daemon.internal("GET", "/healthz")  # a request after the others, so their log lines are out
    daemon.wait_for_log("GET /healthz")
    log = daemon.log_text().lower()
    assert token not in log
    assert token[:16] not in log
    assert pid.hex() not in log
    assert daemon.api_token.lower() not in log
    assert "internal_api_token" in log  # the file's path is logged, never its content


# -- durability and the generated token file ---------------------------------------------------


def test_revocation_survives_sigkill_and_token_file_is_reused(tmp_path: Path, wallet: FakeWallet) -> None:
    daemon = DaemonProcess(tmp_path / "d", wallet_url=wallet.url)
    with daemon:
        token_file = daemon.token_file
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        api_token = daemon.api_token
        assert len(api_token) >= 32
        pid, token = claim_token(daemon, wallet)
        revoked = _revoke(daemon, token, json={"reason": "fraud"})
        assert revoked.status_code == 200
        daemon.kill()  # no graceful shutdown: the 200 must already be durable
        assert daemon.returncode == -9

        daemon.start()
        assert daemon.token_file.read_text(encoding="ascii").strip() == api_token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        after = daemon.internal("GET", f"/api/v1/token/{token}")
        assert after.status_code == 200
        assert after.json() == revoked.json()
        refused = redeem_until(daemon, pid, 410)
        assert refused.json()["reason"] == "revoked"
        assert daemon.stop() == 0

    log = daemon.log_text()
    assert log.count("--- start") == 2
    assert f"generated {token_file}" in log
    assert f"reusing {token_file}" in log
    assert api_token not in log
    assert token not in log


# -- Unix socket -------------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short folder: a Unix socket path must fit in 108 bytes, which pytest's tmp_path may not."""
    folder = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_internal_unix_socket_mode_0600(short_dir: Path, wallet: FakeWallet) -> None:
    socket_path = short_dir / "internal.sock"
    daemon = DaemonProcess(
        short_dir / "d",
        wallet_url=wallet.url,
        env={"INTERNAL_UNIX_SOCKET": str(socket_path), "INTERNAL_API_TOKEN": "unix-socket-token-0123456789"},
    )
    with daemon:
        mode = socket_path.stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        status, _, body = unix_request(socket_path, "GET", "/healthz")
        assert status == 200
        status, _, body = unix_request(socket_path, "GET", "/api/v1/status")
        assert status == 401
        status, headers, body = unix_request(
            socket_path, "GET", "/api/v1/status", headers=daemon.auth_headers()
        )
        assert status == 200, body
        assert headers["content-type"] == "application/json; charset=utf-8"
        # The TCP address is not used when the socket is configured.
        with pytest.raises(requests.ConnectionError):
            requests.get(daemon.internal_url + "/healthz", timeout=2)
        assert daemon.stop() == 0
    assert not socket_path.exists()


def test_unbindable_internal_socket_stops_the_daemon(tmp_path: Path, wallet: FakeWallet) -> None:
    socket_path = tmp_path / "no" / "such" / "dir" / "internal.sock"
    daemon = DaemonProcess(
        tmp_path / "d", wallet_url=wallet.url, env={"INTERNAL_UNIX_SOCKET": str(socket_path)}
    )
    daemon.start(wait=False)
    try:
        code = daemon.wait_exit(20)
    finally:
        daemon.kill()
    assert code != 0
    log = daemon.log_text()
    assert str(socket_path) in log
    assert "cannot bind" in log
    with pytest.raises(requests.ConnectionError):  # nothing was left listening
        requests.get(daemon.public_url + "/api/v1/info", timeout=2)


def test_token_file_is_created_exclusively_with_mode_0600(tmp_path: Path, wallet: FakeWallet) -> None:
    """A umask that would leave the file readable does not: the mode is set at creation."""
    daemon = DaemonProcess(tmp_path / "d", wallet_url=wallet.url)
    old = os.umask(0)
    try:
        daemon.start(wait=False)
    finally:
        os.umask(old)
    with daemon:
        daemon.wait_ready()
        assert stat.S_IMODE(daemon.token_file.stat().st_mode) == 0o600


def test_healthz_answers_head_and_401_names_the_bearer_scheme(daemon: DaemonProcess) -> None:
    head = requests.head(daemon.internal_url + "/healthz", timeout=5)
    assert head.status_code == 200 and head.content == b""
    refused = requests.get(daemon.internal_url + "/api/v1/status", timeout=5)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
