"""docs/PROTOCOL.md §6: environment only, trimmed, empty means unset, every problem reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from anon_ticket.config import BindAddress, Config
from anon_ticket.errors import ConfigError


def test_defaults() -> None:
    config = Config.from_environ({})
    assert config.database_url.backend == "sqlite"
    assert config.database_url.sqlite_path == Path.cwd() / "anon_ticket.db"
    assert config.api_bind_address == BindAddress("127.0.0.1", 8080)
    assert config.internal_bind_address == BindAddress("127.0.0.1", 8081)
    assert config.api_unix_socket is None and config.internal_unix_socket is None
    assert config.internal_api_token is None
    assert config.monero_rpc_url == "http://127.0.0.1:18082/json_rpc"
    assert config.monero_rpc_timeout_secs == 30
    assert config.monitor_start_height is None
    assert config.monitor_poll_interval_secs == 5
    assert config.monitor_min_confirmations == 10
    assert config.monitor_rescan_depth == 30
    assert config.min_payment_amount == 10_000_000_000
    assert (config.statsd_host, config.statsd_port, config.statsd_prefix) == (
        "127.0.0.1",
        8125,
        "anon_ticket",
    )
    assert (config.log_level, config.log_format) == ("INFO", "text")
    assert any("MIN_PAYMENT_AMOUNT" in w for w in config.warnings())


def test_values_are_trimmed_and_empty_means_unset() -> None:
    config = Config.from_environ(
        {"MONITOR_MIN_CONFIRMATIONS": "  3 ", "MONITOR_START_HEIGHT": "   ", "MIN_PAYMENT_AMOUNT": " 5\n"}
    )
    assert config.monitor_min_confirmations == 3
    assert config.monitor_start_height is None
    assert config.min_payment_amount == 5
    assert config.warnings() == []


def test_database_urls() -> None:
    relative = Config.from_environ({"DATABASE_URL": "sqlite:///data/x.db"}).database_url
    assert relative.sqlite_path == Path.cwd() / "data/x.db"
    absolute = Config.from_environ({"DATABASE_URL": "sqlite:////var/lib/at/x.db"}).database_url
    assert absolute.sqlite_path == Path("/var/lib/at/x.db")
    postgres = Config.from_environ({"DATABASE_URL": "postgresql://u:pw@db/at"}).database_url
    assert postgres.backend == "postgresql"
    assert "pw" not in str(postgres)


def test_every_problem_is_reported_together_naming_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_environ(
            {
                "DATABASE_URL": "sqlite:///:memory:",
                "API_BIND_ADDRESS": "nowhere",
                "INTERNAL_BIND_ADDRESS": "127.0.0.1:99999",
                "MONERO_RPC_URL": "ftp://x",
                "MONERO_RPC_TIMEOUT_SECS": "-1",
                "MONITOR_POLL_INTERVAL_SECS": "nan",
                "MONITOR_MIN_CONFIRMATIONS": "0",
                "MONITOR_RESCAN_DEPTH": "ten",
                "MONITOR_START_HEIGHT": "-5",
                "MIN_PAYMENT_AMOUNT": "0",
                "STATSD_PORT": "0",
                "LOG_LEVEL": "LOUD",
                "LOG_FORMAT": "xml",
                "INTERNAL_API_TOKEN": "short",
            }
        )
    named = {problem.split(":")[0] for problem in caught.value.problems}
    assert named == {
        "DATABASE_URL",
        "API_BIND_ADDRESS",
        "INTERNAL_BIND_ADDRESS",
        "MONERO_RPC_URL",
        "MONERO_RPC_TIMEOUT_SECS",
        "MONITOR_POLL_INTERVAL_SECS",
        "MONITOR_MIN_CONFIRMATIONS",
        "MONITOR_RESCAN_DEPTH",
        "MONITOR_START_HEIGHT",
        "MIN_PAYMENT_AMOUNT",
        "STATSD_PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "INTERNAL_API_TOKEN",
    }
    assert "short" not in str(caught.value)


def test_fractional_poll_interval_and_ipv6_bind() -> None:
    config = Config.from_environ({"MONITOR_POLL_INTERVAL_SECS": "0.25", "API_BIND_ADDRESS": "[::1]:9000"})
    assert config.monitor_poll_interval_secs == 0.25
    assert config.api_bind_address == BindAddress("::1", 9000)
    assert str(config.api_bind_address) == "[::1]:9000"


def test_secrets_print_masked() -> None:
    config = Config.from_environ(
        {"INTERNAL_API_TOKEN": "s3cret-s3cret-s3cret", "MONERO_RPC_PASSWORD": "walletpass"}
    )
    shown = config.describe() + repr(config)
    assert "s3cret" not in shown and "walletpass" not in shown
    assert "********" in shown
    assert config.internal_api_token is not None
    assert config.internal_api_token.reveal() == "s3cret-s3cret-s3cret"


def test_passwords_in_urls_never_print() -> None:
    config = Config.from_environ({"DATABASE_URL": "postgresql://u:pw1@h/db?password=hunter2&sslmode=require"})
    shown = str(config.database_url) + config.describe()
    assert "pw1" not in shown and "hunter2" not in shown and "sslmode=require" in shown
    for url in ("user:s3cret@host/x", "http://user:s3cret@host/json_rpc"):
        with pytest.raises(ConfigError) as caught:
            Config.from_environ({"MONERO_RPC_URL": url})
        assert "s3cret" not in str(caught.value)


def test_node_name_defaults_to_the_short_host_name_and_must_fit_a_metric_name() -> None:
    import socket  # noqa: PLC0415

    config = Config.from_environ({})
    expected = socket.gethostname().split(".")[0]
    assert config.node_name == "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in expected
    )
    assert config.pid_screen_rebuild_secs == 300
    assert Config.from_environ({"NODE_NAME": "eu-1"}).node_name == "eu-1"
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({"NODE_NAME": "a.b", "PID_SCREEN_REBUILD_SECS": "0"})
    assert {problem.split(":")[0] for problem in caught.value.problems} == {
        "NODE_NAME",
        "PID_SCREEN_REBUILD_SECS",
    }
