"""The access gateway as the daemon's third listener (docs/PROTOCOL.md §13, §6), the daemon a process.

On a TCP port or a Unix socket (mode 0660, no fallback), never on the other two listeners, and with the
access policy shown in the internal token record only when it is configured.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import requests

from tests.support.daemon import DaemonProcess, claim_token, free_ports, unix_request
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet
from tests.test_openapi import _validator

wallet = module_wallet()


def test_the_gateway_listens_on_its_own_port_only(tmp_path: Path, wallet: FakeWallet) -> None:
    (port,) = free_ports(1)
    env = {"ACCESS_GATEWAY_BIND_ADDRESS": f"127.0.0.1:{port}", "ACCESS_SECONDS_PER_PAYMENT": "3600"}
    with DaemonProcess(tmp_path, wallet_url=wallet.url, env=env) as daemon:
        daemon.wait_for_log(f"access listener serving on 127.0.0.1:{port}")
        _, token = claim_token(daemon, wallet)
        gateway = f"http://127.0.0.1:{port}"
        allowed = requests.get(gateway + "/auth", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert allowed.status_code == 200 and allowed.headers["X-Access-Until"].endswith("Z")
        record = daemon.internal("GET", f"/api/v1/token/{token}").json()
        assert record["access_until"] == allowed.headers["X-Access-Until"]
        _validator("/components/schemas/TokenRecord").validate(record)  # the served document allows it
        assert requests.get(gateway + "/login", timeout=10).status_code == 200
        # Never on the public or the internal listener, authenticated or not.
        for path in ("/auth", "/login"):
            assert daemon.public("GET", path).status_code == 404
            assert daemon.public("POST", path).status_code in (404, 405)
            assert daemon.internal("GET", path).status_code == 404
            assert daemon.internal("GET", path, auth=False).status_code == 404


def test_without_the_variables_nothing_changes(tmp_path: Path, wallet: FakeWallet) -> None:
    with DaemonProcess(tmp_path, wallet_url=wallet.url) as daemon:
        _, token = claim_token(daemon, wallet)
        record = daemon.internal("GET", f"/api/v1/token/{token}").json()
        assert "access_until" not in record
        assert "access listener" not in daemon.log_text()
        assert daemon.public("GET", "/auth").status_code == 404


def test_the_gateway_on_a_unix_socket_is_for_the_proxys_group(tmp_path: Path, wallet: FakeWallet) -> None:
    path = tmp_path / "access.sock"
    with DaemonProcess(
        tmp_path, wallet_url=wallet.url, env={"ACCESS_GATEWAY_UNIX_SOCKET": str(path)}
    ) as daemon:
        daemon.wait_for_log(f"access listener serving on unix:{path}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        status, headers, _ = unix_request(path, "GET", "/auth")
        assert (status, headers["x-access-reason"]) == (401, "no_credential")
    assert not path.exists()


def test_a_gateway_address_in_use_stops_the_start(tmp_path: Path, wallet: FakeWallet) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = DaemonProcess(
            tmp_path, wallet_url=wallet.url, env={"ACCESS_GATEWAY_BIND_ADDRESS": f"127.0.0.1:{port}"}
        )
        daemon.start(wait=False)
        assert daemon.wait_exit() != 0
        assert f"ACCESS_GATEWAY_BIND_ADDRESS=127.0.0.1:{port}: cannot bind" in daemon.log_text()
