"""`client redeem` against a real HTTP server playing docs/PROTOCOL.md §4 answers, with exit codes of §7."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from anon_ticket.client.cli import main
from anon_ticket.core.domain import PaymentId, TxId

from .fakeserver import DROP, INFO, FakeServer, Step, error, ok, run_cli
from .socksproxy import SocksProxy

PID = PaymentId(bytes([0xA3]) * 32)
TOKEN = PID.service_token(TxId(bytes([0x5C]) * 32)).hex()
CLAIMED = {
    "status": "claimed",
    "token": TOKEN,
    "amount": 10_000_000_000,
    "claimed_at": "2026-11-27T23:59:59Z",
}
NOT_FOUND = error(404, "payment_not_found", "no payment seen for this pid")
FAST = ("--poll-interval", "0.01", "--timeout", "5")


def pending(confirmations: int) -> Step:
    return ok(
        {
            "status": "pending",
            "amount": 10_000_000_000,
            "confirmations": confirmations,
            "required_confirmations": 10,
        },
        status=202,
    )


def redeem(server: FakeServer, *extra: str, stdin: str = PID.hex() + "\n") -> tuple[int, str, str]:
    run = run_cli("redeem", "--server", server.url, *FAST, *extra, stdin=stdin)
    return run.code, run.out, run.err


def test_waits_through_404_and_202_then_prints_the_token(server: FakeServer) -> None:
    server.redeem(NOT_FOUND, NOT_FOUND, pending(0), pending(3), pending(3), ok(CLAIMED))
    code, out, err = redeem(server)
    assert code == 0, err
    assert out == TOKEN + "\n"
    assert "payment not seen yet" in err
    assert "0.01 XMR seen, 0/10 confirmations" in err
    assert err.count("3/10 confirmations") == 1  # a repeated answer is shown once
    assert "claimed at 2026-11-27T23:59:59Z" in err
    assert PID.hex() not in out + err
    paths = [seen.method + " " + seen.path for seen in server.script.seen]
    assert paths == ["GET /api/v1/info"] + ["POST /api/v1/redeem"] * 6
    for seen in server.script.requests_to("/api/v1/redeem"):
        assert seen.headers["Content-Type"] == "application/json"
        assert json.loads(seen.body) == {"pid": PID.hex()}
        assert "python" not in seen.headers["User-Agent"].lower()


def test_reads_the_pid_from_a_file(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    path.write_text(PID.hex().upper() + "\n")
    path.chmod(0o600)
    server.redeem(ok({**CLAIMED, "status": "already_claimed"}))
    code, out, err = redeem(server, "--pid-file", str(path), stdin="")
    assert code == 0
    assert out == TOKEN + "\n"
    assert "already claimed" in err
    assert "accessible to other users" not in err
    assert json.loads(server.script.requests_to("/api/v1/redeem")[0].body) == {"pid": PID.hex()}


def test_warns_about_a_pid_file_others_can_read(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    path.write_text(PID.hex())
    path.chmod(0o644)
    server.redeem(ok(CLAIMED))
    code, _, err = redeem(server, "--pid-file", str(path))
    assert code == 0
    assert "accessible to other users" in err


def test_json_output(server: FakeServer) -> None:
    server.redeem(ok(CLAIMED))
    code, out, _ = redeem(server, "--json")
    assert code == 0
    assert json.loads(out) == CLAIMED


def test_a_new_client_created_pid_file_round_trips(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "order.pid"
    assert run_cli("new", "--server", server.url, "--out", str(path)).code == 0
    pid = PaymentId.parse(path.read_text().strip())
    server.redeem(ok({**CLAIMED, "token": pid.service_token(TxId(bytes(32))).hex()}))
    code, out, _ = redeem(server, "--pid-file", str(path), stdin="")
    assert code == 0
    assert json.loads(server.script.requests_to("/api/v1/redeem")[0].body) == {"pid": pid.hex()}
    assert out.strip() == pid.service_token(TxId(bytes(32))).hex()


def test_410_is_refused_with_the_reason(server: FakeServer) -> None:
    server.redeem(NOT_FOUND, error(410, "token_revoked", "the operator revoked this token", reason="revoked"))
    code, out, err = redeem(server)
    assert code == 4
    assert out == ""
    assert "token_revoked (revoked): the operator revoked this token" in err


def test_402_is_refused_with_amounts_and_json_prints_the_error(server: FakeServer) -> None:
    server.redeem(
        error(
            402, "insufficient_payment", "pay more", amount=5_000_000_000, min_payment_amount=10_000_000_000
        )
    )
    code, out, err = redeem(server, "--json")
    assert code == 4
    assert "0.005 XMR counted of 0.01 XMR required" in err
    assert json.loads(out) == {
        "status": 402,
        "error": "insufficient_payment",
        "message": "pay more",
        "amount": 5_000_000_000,
        "min_payment_amount": 10_000_000_000,
    }


def test_503_retry_after_is_respected(server: FakeServer) -> None:
    server.redeem(error(503, "unavailable", retry_after=1), ok(CLAIMED))
    started = time.monotonic()
    code, out, err = redeem(server)
    assert code == 0
    assert time.monotonic() - started >= 0.85  # 1 s minus the jitter-free margin of the clock
    assert "server busy (503 unavailable); next try in 1 s" in err
    assert out == TOKEN + "\n"


def test_huge_retry_after_is_cut_at_the_deadline(server: FakeServer) -> None:
    server.redeem(error(503, "unavailable", retry_after=100_000))
    started = time.monotonic()
    run = run_cli(
        "redeem", "--server", server.url, "--timeout", "0.4", "--poll-interval", "0.01", stdin=PID.hex()
    )
    assert time.monotonic() - started < 3
    assert run.code == 5  # the server stayed unavailable up to the deadline
    assert "giving up" in run.err
    assert len(server.script.requests_to("/api/v1/redeem")) == 2  # first try, and one at the deadline


def test_rate_limited_until_the_deadline_is_a_timeout(server: FakeServer) -> None:
    server.redeem(error(429, "rate_limited", retry_after=1))
    run = run_cli(
        "redeem", "--server", server.url, "--timeout", "0.3", "--poll-interval", "0.01", stdin=PID.hex()
    )
    assert run.code == 3
    assert "timed out" in run.err


def test_not_seen_until_the_deadline_is_a_timeout(server: FakeServer) -> None:
    server.redeem(NOT_FOUND)
    started = time.monotonic()
    run = run_cli(
        "redeem", "--server", server.url, "--timeout", "0.3", "--poll-interval", "0.02", stdin=PID.hex()
    )
    assert run.code == 3
    assert time.monotonic() - started < 2
    assert "last answer: payment not seen yet" in run.err
    assert run.out == ""


def test_pending_until_the_deadline_is_a_timeout(server: FakeServer) -> None:
    server.redeem(pending(4))
    run = run_cli(
        "redeem", "--server", server.url, "--timeout", "0.2", "--poll-interval", "0.02", stdin=PID.hex()
    )
    assert run.code == 3
    assert "4/10 confirmations" in run.err


def test_dropped_connections_are_retried(server: FakeServer) -> None:
    server.redeem(Step(DROP), Step(DROP), ok(CLAIMED))
    code, out, err = redeem(server)
    assert code == 0
    assert out == TOKEN + "\n"
    assert "cannot reach the server" in err


def test_unreachable_until_the_deadline_is_exit_5(closed_port_url: str) -> None:
    run = run_cli(
        "redeem", "--server", closed_port_url, "--timeout", "0.3", "--poll-interval", "0.02", stdin=PID.hex()
    )
    assert run.code == 5
    assert "cannot reach the server: connection failed; giving up" in run.err


@pytest.mark.parametrize(
    "step",
    [
        Step(200, raw=b"<html>not json</html>"),
        ok({"status": "claimed", "token": "not-a-token"}),
        ok({"status": "weird", "token": TOKEN}),
        ok([1, 2, 3]),
        error(400, "invalid_pid"),
        error(415, "unsupported_media_type"),
        error(413, "payload_too_large"),
        error(500, "internal_error"),
        error(502, "bad_gateway"),
        error(404, "not_found"),  # a wrong --server path, not "payment not seen"
        Step(404, raw=b"not json"),
        Step(307, headers=(("Location", "http://127.0.0.1:9/steal"),)),
        Step(200, raw=b'{"token": "' + b"a" * 70_000 + b'"}'),
    ],
)
def test_answers_off_the_contract_are_exit_5_at_once(server: FakeServer, step: Step) -> None:
    server.redeem(step, ok(CLAIMED))
    code, out, _ = redeem(server)
    assert code == 5
    assert out == ""
    assert len(server.script.requests_to("/api/v1/redeem")) == 1


def test_scheme_mismatch_stops_before_the_pid_is_sent(server: FakeServer) -> None:
    server.info(ok({**INFO, "payment_id_scheme": "blake2b/v9"}))
    server.redeem(ok(CLAIMED))
    code, out, err = redeem(server)
    assert code == 5
    assert "blake2b/v9" in err
    assert server.script.requests_to("/api/v1/redeem") == []
    assert out == ""


def test_info_is_waited_for_while_the_server_starts(server: FakeServer) -> None:
    server.info(error(503, "unavailable"), ok(INFO))
    server.redeem(ok(CLAIMED))
    code, out, _ = redeem(server)
    assert code == 0
    assert out == TOKEN + "\n"
    assert len(server.script.requests_to("/api/v1/info")) == 2


def test_info_garbage_is_exit_5(server: FakeServer) -> None:
    server.info(ok({"primary_address": 5}))
    code, _, err = redeem(server)
    assert code == 5
    assert "/api/v1/info lacks" in err


def test_server_text_cannot_drive_the_terminal(server: FakeServer) -> None:
    server.redeem(
        error(410, "token_revoked", "\x1b[2J\x1b]0;pwned\x07fake token: 00ff\r\nx", reason="revoked\x1b[1m")
    )
    code, _, err = redeem(server)
    assert code == 4
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "fake token: 00ff  x" in err


def test_http_proxy_is_used(server: FakeServer) -> None:
    """The fake server doubles as an HTTP proxy: requests then ask it for absolute URLs."""
    server.redeem(ok(CLAIMED))
    run = run_cli(
        "redeem", "--server", "http://shop.invalid/base/", "--proxy", server.url, *FAST, stdin=PID.hex()
    )
    assert run.code == 5  # the proxy answered 404 not_found for /base/api/v1/info: the path is honoured
    assert server.script.seen[0].target == "http://shop.invalid/base/api/v1/info"


def test_http_proxy_full_exchange(server: FakeServer) -> None:
    server.play("/shop/api/v1/info", ok(INFO))
    server.play("/shop/api/v1/redeem", ok(CLAIMED))
    run = run_cli(
        "redeem", "--server", "http://shop.invalid/shop", "--proxy", server.url, *FAST, stdin=PID.hex()
    )
    assert run.code == 0
    assert [seen.target for seen in server.script.seen] == [
        "http://shop.invalid/shop/api/v1/info",
        "http://shop.invalid/shop/api/v1/redeem",
    ]


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("ab" * 31 + "zz\n", "64 hex digits"),
        (PID.hex() + "00\n", "64 hex digits"),
        ("0x" + PID.hex(), "64 hex digits"),
        (PID.hex() + "\n" + PID.hex() + "\n", "64 hex digits"),
    ],
)
def test_bad_pid_text_is_a_usage_error_before_any_request(server: FakeServer, stdin: str, why: str) -> None:
    code, out, err = redeem(server, stdin=stdin)
    assert code == 2
    assert why in err
    assert out == ""
    assert server.script.seen == []
    for line in stdin.split():
        assert line not in err


def test_pid_file_dash_means_standard_input(server: FakeServer) -> None:
    server.redeem(ok(CLAIMED))
    code, out, _ = redeem(server, "--pid-file", "-")
    assert code == 0
    assert out == TOKEN + "\n"


def test_closed_standard_input_is_a_usage_error(server: FakeServer) -> None:
    closed = io.StringIO()
    closed.close()
    err = io.StringIO()
    assert main(["redeem", "--server", server.url], stdin=closed, stdout=io.StringIO(), stderr=err) == 2
    assert "standard input is closed" in err.getvalue()
    assert server.script.seen == []


def test_missing_pid_file_is_a_usage_error(server: FakeServer, tmp_path: Path) -> None:
    code, _, err = redeem(server, "--pid-file", str(tmp_path / "nope"))
    assert code == 2
    assert "cannot read PID file" in err
    assert server.script.seen == []


def test_pid_on_the_command_line_is_refused_without_echo(server: FakeServer) -> None:
    for argv in (
        ["redeem", "--server", server.url, "--pid", PID.hex()],
        ["redeem", "--server", server.url, f"--pid={PID.hex()}"],
        ["redeem", "--server", server.url, PID.hex().upper()],
    ):
        run = run_cli(*argv)
        assert run.code == 2
        assert "does not belong on the command line" in run.err
        assert PID.hex() not in run.err.lower()
    assert server.script.seen == []


@pytest.mark.parametrize(
    "argv",
    [
        ["redeem"],
        ["redeem", "--server", "ftp://example.org"],
        ["redeem", "--server", "http://example.org:99999"],
        ["redeem", "--server", "http://[::1"],
        ["redeem", "--server", "http://example.org", "--proxy", "socks5h://127.0.0.1:notaport"],
        ["redeem", "--server", "http://user:pw@example.org"],
        ["redeem", "--server", "http://example.org", "--timeout", "-1"],
        ["redeem", "--server", "http://example.org", "--timeout", "nan"],
        ["redeem", "--server", "http://example.org", "--poll-interval", "0"],
        ["redeem", "--server", "http://example.org", "--proxy", "tor"],
        ["redeem", "--server", "http://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"],
        [
            "redeem",
            "--server",
            "http://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
            "--proxy",
            "socks5://127.0.0.1:9050",
        ],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_are_exit_2(argv: list[str]) -> None:
    run = run_cli(*argv, stdin=PID.hex())
    assert run.code == 2
    assert run.err


def test_help_explains_itself_and_the_exit_codes() -> None:
    run = run_cli("redeem", "--help")
    assert run.code == 0
    for text in (
        "--pid-file",
        "--timeout",
        "--proxy",
        "socks5h://",
        "exit codes:",
        "402",
        "410",
        "never from the",
    ):
        assert text in run.out
    top = run_cli("--help")
    assert top.code == 0
    assert "redeem" in top.out
    assert "new" in top.out


def test_socks5h_proxy_resolves_the_onion_name(server: FakeServer, socks_proxy: SocksProxy) -> None:
    onion = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"
    server.redeem(NOT_FOUND, ok(CLAIMED))
    run = run_cli("redeem", "--server", f"http://{onion}", "--proxy", socks_proxy.url, *FAST, stdin=PID.hex())
    assert run.code == 0, run.err
    assert run.out == TOKEN + "\n"
    assert socks_proxy.asked == [(onion, 80)] * 3  # info, 404, 200: each by name, none resolved here
    assert server.script.seen[-1].headers["Host"] == onion
