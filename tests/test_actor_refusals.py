"""An expected refusal crossing an actor boundary is a value, never a logged traceback (issue 20).

Pykka logs every exception an `ask` hands back ("Exception returned from … to caller", with its
traceback); the storage writer's expected errors cross as `Refused` values instead and are raised
again in the caller's thread by `actors.locator.wait`. The real writer actor on a real SQLite file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from anon_ticket.actors.locator import wait
from anon_ticket.actors.storage_writer import StorageWriter, StorageWriterProxy
from anon_ticket.errors import CursorMoved, RescanRefused, WalletMismatch
from anon_ticket.storage.database import Database


@pytest.fixture
def writer(database: Database) -> Iterator[StorageWriterProxy]:
    ref = StorageWriter.start(database.open_writer)
    yield ref.proxy()  # type: ignore[misc]
    ref.stop()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info is not None or "Traceback" in r.getMessage()]


def test_a_refused_rescan_reaches_the_caller_as_its_error_and_logs_no_traceback(
    writer: StorageWriterProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wait(writer.start_scan(100), 10, "storage writer")
    with pytest.raises(RescanRefused, match="ahead of the scan cursor"):
        wait(writer.rescan_from(150), 10, "storage writer")
    with pytest.raises(RescanRefused):
        wait(writer.rescan_from(50, 10**6), 10, "storage writer")
    assert tracebacks(caplog) == []
    assert wait(writer.rescan_from(90), 10, "storage writer").scan_cursor == 90  # the writer lives on


def test_a_batch_dropped_by_a_moved_cursor_and_a_second_wallet_log_no_traceback(
    writer: StorageWriterProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wait(writer.start_scan(100), 10, "storage writer")
    with pytest.raises(CursorMoved):
        poll = writer.apply_poll(
            [], wallet_height=110, min_height=90, expected_cursor=105, polled_at=1, min_confirmations=1
        )
        wait(poll, 10, "storage writer")
    wait(writer.bind_wallet("4" + "A" * 94), 10, "storage writer")
    with pytest.raises(WalletMismatch):
        wait(writer.bind_wallet("4" + "B" * 94), 10, "storage writer")
    assert tracebacks(caplog) == []


def test_a_bug_in_an_ask_is_still_an_exception_that_pykka_logs(
    writer: StorageWriterProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pykka")
    with pytest.raises(TypeError):
        poll = writer.apply_poll(
            None,  # type: ignore[arg-type]
            wallet_height=110,
            min_height=90,
            expected_cursor=None,
            polled_at=1,
            min_confirmations=1,
        )
        wait(poll, 10, "storage writer")
    assert any("Exception returned" in r.getMessage() for r in caplog.records)
    assert isinstance(writer.ping().get(timeout=10), bool)
