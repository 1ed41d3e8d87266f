"""`python -m anon_ticket token show|revoke` against the real daemon, over TCP and a Unix socket.

Most cases call `tokens.main` in-process (fast, and the environment is explicit); one runs the
real command line as a child process, the way an operator types it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.commands import tokens
from tests.support.daemon import REPO_ROOT, DaemonProcess, claim_token, free_ports
from tests.support.fake_wallet import FakeWallet
from tests.support.fixtures import module_wallet

UNKNOWN_TOKEN = "12" * 32


wallet = module_wallet()


def _environ(daemon: DaemonProcess, **extra: str) -> dict[str, str]:
    """What an operator's shell would hold: the daemon's own DATABASE_URL and INTERNAL_BIND_ADDRESS."""
    return {
        "DATABASE_URL": f"sqlite:///{daemon.database_path}",
        "INTERNAL_BIND_ADDRESS": daemon.settings["INTERNAL_BIND_ADDRESS"],
        **extra,
    }


def run(argv: list[str], environ: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = tokens.main(argv, environ=environ, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_show_reads_the_token_from_stdin(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, token = claim_token(daemon, wallet)
    code, out, err = run(["show", "-"], _environ(daemon), stdin=token + "\n")
    assert (code, err) == (0, "")
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["token"] == token
    assert lines["status"] == "active"
    assert lines["amount"].startswith(f"{daemon.min_payment_amount} atomic units")
    assert lines["revoked_at"] == "-"


def test_show_json_is_the_api_record(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, token = claim_token(daemon, wallet)
    code, out, _ = run(["show", "--json"], _environ(daemon), stdin=token.upper())
    assert code == 0
    assert json.loads(out) == daemon.internal("GET", f"/api/v1/token/{token}").json()


def test_revoke_with_reason_keeps_the_first(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, token = claim_token(daemon, wallet)
    code, out, err = run(["revoke", "-", "--reason", "abuse report #7", "--json"], _environ(daemon), token)
    assert (code, err) == (0, ""), err
    record = json.loads(out)
    assert record["status"] == "revoked"
    assert record["revoke_reason"] == "abuse report #7"
    assert daemon.internal("GET", f"/api/v1/token/{token}").json() == record
    code, out, _ = run(["revoke", "--reason", "other", "--json"], _environ(daemon), token)
    assert code == 0
    assert json.loads(out) == record
    code, out, _ = run(["revoke"], _environ(daemon), token)
    assert code == 0 and "abuse report #7" in out


def test_revoke_without_reason(daemon: DaemonProcess, wallet: FakeWallet) -> None:
    _, token = claim_token(daemon, wallet)
    code, out, _ = run(["revoke", "-", "--json"], _environ(daemon), token)
    assert code == 0
    assert json.loads(out)["revoke_reason"] == "revoked"


def test_usage_errors_and_exit_codes(daemon: DaemonProcess, wallet: FakeWallet, tmp_path: Path) -> None:
    _, token = claim_token(daemon, wallet)
    env = _environ(daemon)

    code, _, err = run(["show"], env, stdin=UNKNOWN_TOKEN)
    assert code == tokens.EXIT_NOT_FOUND and "token_not_found" in err
    code, _, err = run(["revoke"], env, stdin=UNKNOWN_TOKEN)
    assert code == tokens.EXIT_NOT_FOUND

    # A token on the command line (where ps shows it) is refused, and not echoed back.
    for command in ("show", "revoke"):
        code, out, err = run([command, token], env)
        assert code == tokens.EXIT_USAGE and "never taken on the command line" in err
        assert token not in err + out

    for bad in ("xyz", token + "0", "", " "):
        code, _, err = run(["show", "-"], env, stdin=bad)
        assert code == tokens.EXIT_USAGE, bad
        assert "64 hex digits" in err
    code, _, err = run(["revoke", "--reason", "r" * 257], env, stdin=token)
    assert code == tokens.EXIT_USAGE and "256" in err
    assert daemon.internal("GET", f"/api/v1/token/{token}").json()["status"] == "active"

    code, _, err = run(["show"], {**env, "INTERNAL_API_TOKEN": "definitely-the-wrong-token"}, stdin=token)
    assert code == tokens.EXIT_REFUSED and "401" in err

    (closed,) = free_ports(1)
    code, _, err = run(["show", "--url", f"http://127.0.0.1:{closed}"], env, stdin=token)
    assert code == tokens.EXIT_ERROR and "cannot reach" in err

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    code, _, err = run(["show"], {**env, "DATABASE_URL": f"sqlite:///{empty}/anon_ticket.db"}, stdin=token)
    assert code == tokens.EXIT_USAGE
    assert str(empty / "internal_api_token") in err

    token_file = tmp_path / "api-token"
    token_file.write_text(daemon.api_token + "\n", encoding="ascii")
    token_file.chmod(0o600)
    service_token_file = tmp_path / "service-token"
    service_token_file.write_text(token + "\n", encoding="ascii")
    code, out, _ = run(
        [
            *("show", "--token-file", str(service_token_file)),
            *("--api-token-file", str(token_file), "--url", daemon.internal_url),
        ],
        {"DATABASE_URL": f"sqlite:///{empty}/anon_ticket.db"},
    )
    assert code == 0 and "active" in out
    # An internal API token file others can read is refused, with the fix in the message.
    token_file.chmod(0o644)
    code, _, err = run(
        ["show", "--api-token-file", str(token_file), "--url", daemon.internal_url], env, stdin=token
    )
    assert code == tokens.EXIT_USAGE and f"chmod 600 {token_file}" in err

    code, _, err = run(["show"], {**env, "MONITOR_MIN_CONFIRMATIONS": "zero"}, stdin=token)
    assert code == tokens.EXIT_USAGE and "MONITOR_MIN_CONFIRMATIONS" in err

    # argparse's own usage errors become exit code 2 instead of raising SystemExit.
    assert run(["frobnicate"], env)[0] == tokens.EXIT_USAGE
    assert run([], env)[0] == tokens.EXIT_USAGE


@pytest.fixture
def unix_daemon(wallet: FakeWallet) -> Iterator[DaemonProcess]:
    folder = Path(tempfile.mkdtemp(prefix="at-cli-", dir="/tmp"))  # a socket path must stay short
    daemon = DaemonProcess(
        folder,
        wallet_url=wallet.url,
        env={"INTERNAL_UNIX_SOCKET": str(folder / "internal.sock")},
    )
    try:
        with daemon:
            yield daemon
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_command_line_over_the_unix_socket(unix_daemon: DaemonProcess, wallet: FakeWallet) -> None:
    """The real `python -m anon_ticket token …`, with the service token on stdin, never in argv."""
    _, service_token = claim_token(unix_daemon, wallet)
    socket_path = unix_daemon.internal_socket
    assert socket_path is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INTERNAL_", "DATABASE_URL"))},
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": f"sqlite:///{unix_daemon.database_path}",
        "INTERNAL_UNIX_SOCKET": str(socket_path),
    }

    def token_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "anon_ticket", "token", *args],
            input=service_token + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=unix_daemon.workdir,
            timeout=30,
            check=False,
        )

    shown = token_command("show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "active"
    revoked = token_command("revoke", "-", "--reason", "via unix socket")
    assert revoked.returncode == 0, revoked.stderr
    assert "via unix socket" in revoked.stdout
    again = token_command("show", "-", "--unix-socket", str(socket_path), "--json")
    assert json.loads(again.stdout)["revoke_reason"] == "via unix socket"
    helped = subprocess.run(
        [sys.executable, "-m", "anon_ticket", "token", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert helped.returncode == 0 and "exit codes" in helped.stdout
    assert service_token not in unix_daemon.log_text()
