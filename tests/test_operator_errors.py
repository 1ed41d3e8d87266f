"""An operator's mistakes get a clear message naming the variable, and never a traceback.

Also the shipped conf/anon_ticket.env.example, loaded by hand with `--env-file` outside systemd.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from anon_ticket.commands import envfile
from anon_ticket.errors import ConfigError
from tests.support.daemon import REPO_ROOT, DaemonProcess, claim_token
from tests.support.fake_wallet import FakeWallet

ENV_EXAMPLE = REPO_ROOT / "conf" / "anon_ticket.env.example"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process (here: this one) is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_missing_database_folder_names_database_url_and_the_path(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "var" / "lib" / "anon_ticket"
    daemon = DaemonProcess(tmp_path / "work", env={"DATABASE_URL": f"sqlite:///{missing}/anon_ticket.db"})
    result = daemon.command(command)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"DATABASE_URL: the folder {missing} of {missing}/anon_ticket.db does not exist" in output
    assert "Traceback" not in output
    assert not missing.exists()  # never created behind the operator's back


@pytest.mark.parametrize("variable", ["API_BIND_ADDRESS", "INTERNAL_BIND_ADDRESS"])
def test_a_busy_port_says_address_already_in_use_naming_the_variable(
    tmp_path: Path, busy_port: int, variable: str, wallet: FakeWallet
) -> None:
    daemon = DaemonProcess(tmp_path, wallet_url=wallet.url, env={variable: f"127.0.0.1:{busy_port}"})
    result = daemon.command("serve")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{variable}=127.0.0.1:{busy_port}: cannot bind: address already in use" in output
    assert "invalid configuration" not in output
    assert "Traceback" not in output


def test_the_shipped_env_file_runs_outside_systemd_with_env_file(tmp_path: Path, wallet: FakeWallet) -> None:
    """The example as shipped; only what must differ on a test machine is set in the environment,
    which wins over the file (ports, the wallet, a database folder that exists, no /run socket)."""
    daemon = DaemonProcess(
        tmp_path,
        wallet_url=wallet.url,
        env={
            "API_UNIX_SOCKET": "",  # empty means unset, and still wins over the file's /run path
            "LOG_LEVEL": None,
            "MONITOR_MIN_CONFIRMATIONS": None,
            "MIN_PAYMENT_AMOUNT": None,
        },
        args=["--env-file", str(ENV_EXAMPLE), "serve"],
    )
    with daemon:
        # From the file: the price, the confirmations and the JSON log format.
        status = daemon.status()
        assert status is not None
        records = [json.loads(line) for line in daemon.log_text().splitlines() if line.startswith("{")]
        assert any("starting with sqlite:///" in record["message"] for record in records)
        daemon.settings["MIN_PAYMENT_AMOUNT"] = "10000000000"
        daemon.settings["MONITOR_MIN_CONFIRMATIONS"] = "10"
        _, token = claim_token(daemon, wallet)
        assert daemon.internal("GET", f"/api/v1/token/{token}").json()["amount"] == 10_000_000_000
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log_text()


def test_the_shipped_env_file_as_is_names_its_missing_state_folder(tmp_path: Path) -> None:
    folder = Path("/var/lib/anon_ticket")
    if folder.exists():
        # A machine where anon_ticket is installed: the test must not write into its real state folder.
        pytest.skip(f"{folder} exists on this machine")
    daemon = DaemonProcess(tmp_path, env={"DATABASE_URL": None})
    result = daemon.command("--env-file", str(ENV_EXAMPLE), "migrate")
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == 1
    assert f"DATABASE_URL: the folder {folder} of {folder}/anon_ticket.db does not exist" in output
    assert not folder.exists()


def test_an_unreadable_env_file_is_a_usage_error(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path)
    result = daemon.command("--env-file", str(tmp_path / "absent"), "migrate")
    assert result.returncode == 2
    assert f"--env-file {tmp_path / 'absent'}: cannot read it" in result.stderr
    assert "Traceback" not in result.stderr


# -- the env file format ---------------------------------------------------------------------------


def test_env_file_lines_comments_quotes_and_export() -> None:
    text = """
# a comment
; another
DATABASE_URL=sqlite:////var/lib/anon_ticket/anon_ticket.db
  LOG_LEVEL = DEBUG
export STATSD_PREFIX="anon ticket"
MONERO_RPC_PASSWORD='p#ss=word'
EMPTY=
"""
    assert envfile.parse(text, "env") == {
        "DATABASE_URL": "sqlite:////var/lib/anon_ticket/anon_ticket.db",
        "LOG_LEVEL": "DEBUG",
        "STATSD_PREFIX": "anon ticket",
        "MONERO_RPC_PASSWORD": "p#ss=word",
        "EMPTY": "",
    }


def test_env_file_bad_lines_are_all_named() -> None:
    with pytest.raises(ConfigError) as caught:
        envfile.parse("GOOD=1\nnot a variable\n2BAD=x\n", "/etc/anon_ticket/env")
    assert caught.value.problems == [
        "/etc/anon_ticket/env line 2: expected NAME=value, got 'not a variable'",
        "/etc/anon_ticket/env line 3: expected NAME=value, got '2BAD=x'",
    ]


def test_variables_already_set_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("LOG_LEVEL=DEBUG\nLOG_FORMAT=json\n")
    environ = {"LOG_LEVEL": "WARNING"}
    envfile.load(path, environ)
    assert environ == {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
