"""docs/PROTOCOL.md §6 and §12: the Privacy Pass variables, their defaults and their refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from anon_ticket.config import Config
from anon_ticket.errors import ConfigError


def test_defaults_put_the_key_beside_the_database_and_sell_100_tokens_per_payment(tmp_path: Path) -> None:
    config = Config.from_environ({"DATABASE_URL": f"sqlite:///{tmp_path}/shop.db"})
    assert config.privacy_pass is True
    assert config.privacy_pass_key_path == tmp_path / "privacy_pass_key.pem"
    assert config.privacy_pass_issuer_name == "anon_ticket"
    assert config.privacy_pass_origins == ()
    assert config.privacy_pass_tokens_per_payment == 100


def test_postgresql_nodes_default_to_the_working_directory() -> None:
    config = Config.from_environ({"DATABASE_URL": "postgresql://u@db/shop"})
    assert config.privacy_pass_key_path == Path.cwd() / "privacy_pass_key.pem"


def test_every_variable_is_read() -> None:
    config = Config.from_environ(
        {
            "PRIVACY_PASS": " OFF ",
            "PRIVACY_PASS_KEY_FILE": "/etc/anon_ticket/pp.pem",
            "PRIVACY_PASS_ISSUER_NAME": "shop.example.onion",
            "PRIVACY_PASS_ORIGINS": "search.example.onion, mail.example.onion",
            "PRIVACY_PASS_TOKENS_PER_PAYMENT": "250",
        }
    )
    assert config.privacy_pass is False
    assert config.privacy_pass_key_path == Path("/etc/anon_ticket/pp.pem")
    assert config.privacy_pass_issuer_name == "shop.example.onion"
    assert config.privacy_pass_origins == ("search.example.onion", "mail.example.onion")
    assert config.privacy_pass_tokens_per_payment == 250


def test_a_relative_key_file_is_taken_from_the_working_directory() -> None:
    config = Config.from_environ({"PRIVACY_PASS_KEY_FILE": "keys/pp.pem"})
    assert config.privacy_pass_key_path == Path.cwd() / "keys" / "pp.pem"


def test_bad_values_are_reported_together_each_with_its_name() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_environ(
            {
                "PRIVACY_PASS": "yes",
                "PRIVACY_PASS_ISSUER_NAME": "two words",
                "PRIVACY_PASS_ORIGINS": "a.onion,,b.onion",
                "PRIVACY_PASS_TOKENS_PER_PAYMENT": "0",
            }
        )
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "PRIVACY_PASS",
        "PRIVACY_PASS_ISSUER_NAME",
        "PRIVACY_PASS_ORIGINS",
        "PRIVACY_PASS_TOKENS_PER_PAYMENT",
    ]


@pytest.mark.parametrize("name", ["x" * 256, "a,b", "é.onion", "tab\there"])
def test_names_the_challenge_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="PRIVACY_PASS_ISSUER_NAME"):
        Config.from_environ({"PRIVACY_PASS_ISSUER_NAME": name})
