"""`/api/v1/status` as a typed value, and the one function that makes its JSON (docs/PROTOCOL.md §5).

The daemon-level tests (tests/test_internal_api.py, tests/test_supervision.py) check the JSON a real
daemon answers; these check the mapping itself: key order, time format, and `node` only when set.
"""

from __future__ import annotations

import dataclasses
import json

from anon_ticket.service.status import (
    ActorStatus,
    NodeStatus,
    PaymentCounts,
    Status,
    TokenCounts,
    WalletStatus,
    status_json,
)

STATUS = Status(
    version="1.2.3",
    actors=(("abuse_metrics", ActorStatus("running", 0)), ("pid_cache", ActorStatus("restarting", 2))),
    wallet=WalletStatus(
        height=200,
        primary_address="4Address",
        last_poll_at=1_796_234_400,
        last_error=None,
        stale=False,
        last_success_at=None,
    ),
    scan_cursor=190,
    payments=PaymentCounts(pending=1, redeemable=2, claimed=3),
    tokens=TokenCounts(active=3, revoked=1),
    abuse_level="normal",
)


def test_the_json_of_a_status_in_the_documented_order() -> None:
    assert json.dumps(status_json(STATUS)) == json.dumps(
        {
            "version": "1.2.3",
            "actors": {
                "abuse_metrics": {"state": "running", "restarts": 0},
                "pid_cache": {"state": "restarting", "restarts": 2},
            },
            "wallet": {
                "height": 200,
                "primary_address": "4Address",
                "last_poll_at": "2026-12-02T18:00:00Z",
                "last_error": None,
                "stale": False,
                "last_success_at": None,
            },
            "scan_cursor": 190,
            "payments": {"pending": 1, "redeemable": 2, "claimed": 3},
            "tokens": {"active": 3, "revoked": 1},
            "abuse_level": "normal",
        }
    )


def test_node_is_shown_only_once_a_node_has_a_role() -> None:
    with_node = dataclasses.replace(STATUS, node=NodeStatus("host:42", "leader"))
    body = status_json(with_node)
    assert list(body)[-1] == "node" and body["node"] == {"id": "host:42", "role": "leader"}
    assert "node" not in status_json(STATUS)
