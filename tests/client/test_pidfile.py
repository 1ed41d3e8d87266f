"""The PID file: created once, owner-only, durable; read back strictly, never echoed."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anon_ticket.client.errors import UsageError
from anon_ticket.client.pidfile import (
    parse_pid_text,
    read_pid_file,
    read_pid_stream,
    readable_by_others,
    write_new_pid_file,
)
from anon_ticket.core.domain import PaymentId

PID = PaymentId(bytes(31) + b"\x01")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_writes_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    write_new_pid_file(path, PID)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == PID.hex() + "\n"
    assert not readable_by_others(path)


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    path.write_text("an older, unredeemed PID\n")
    with pytest.raises(UsageError, match="already exists"):
        write_new_pid_file(path, PID)
    assert path.read_text() == "an older, unredeemed PID\n"


def test_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "order.pid"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="already exists"):
        write_new_pid_file(link, PID)
    assert not target.exists()


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot create"):
        write_new_pid_file(tmp_path / "missing" / "order.pid", PID)


def test_reads_back_what_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    write_new_pid_file(path, PID)
    assert read_pid_file(path) == PID


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"00" * 31 + b"01ff",
        b"0x" + b"00" * 32,
        b"00" * 16 + b" " + b"00" * 16,
        b"\xff" * 64,
        b"0" * 5000,
    ],
)
def test_rejects_a_file_that_does_not_hold_exactly_one_pid(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "order.pid"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        read_pid_file(path)
    if content.strip():
        assert content.decode("latin-1")[:40] not in str(caught.value)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read PID file"):
        read_pid_file(tmp_path / "nope")


def test_group_readable_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    path.write_text(PID.hex())
    path.chmod(0o640)
    assert readable_by_others(path)


@given(
    pid=st.binary(min_size=32, max_size=32),
    upper=st.booleans(),
    padding=st.sampled_from(["", "\n", "  \r\n", "\t"]),
)
def test_accepts_either_case_and_surrounding_whitespace(pid: bytes, upper: bool, padding: str) -> None:
    text = pid.hex().upper() if upper else pid.hex()
    assert parse_pid_text(padding + text + padding, "test") == PaymentId(pid)
    assert read_pid_stream(io.StringIO(text + "\n")) == PaymentId(pid)


def test_error_never_echoes_the_text() -> None:
    almost = "ab" * 31 + "zz"
    with pytest.raises(UsageError) as caught:
        parse_pid_text(almost, "standard input")
    assert almost not in str(caught.value)
    assert "64 hex digits" in str(caught.value)
