"""The fake monero-wallet-rpc answers like the real one (captured samples) and injects faults on demand."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.support.fake_wallet import MERCHANT_ADDRESS, FakeWallet
from tests.support.samples import load_sample
from tests.support.shapes import shape, without_timestamps
from tests.support.waiting import wait_for

pytest_plugins = ("tests.support.fixtures",)

POLL = {"in": True, "pool": True, "filter_by_height": True}


def rpc(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    rid: Any = "0",
    auth: requests.auth.AuthBase | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """The whole JSON-RPC answer envelope."""
    payload = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
    response = requests.post(url, json=payload, auth=auth, timeout=timeout)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def result(url: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body = rpc(url, method, params)
    assert "error" not in body, body
    res: dict[str, Any] = body["result"]
    return res


def replay(wallet: FakeWallet, sample_name: str) -> None:
    """Send the sample's request to the fake; its whole answer must equal the captured one."""
    sample = load_sample(sample_name)
    request = sample["request"]
    answer = rpc(wallet.url, request["method"], request["params"], rid=sample["response"]["id"])
    assert without_timestamps(answer) == without_timestamps(sample["response"]), sample_name


@pytest.fixture
def wallet() -> Iterator[FakeWallet]:
    with FakeWallet(height=201) as fake:
        yield fake


# -- shapes against the captured samples ----------------------------------------------------------------


def test_get_height_and_get_address_answer_like_the_samples() -> None:
    with FakeWallet(height=212) as fake:
        replay(fake, "get_height_merchant")
        replay(fake, "get_address_merchant")
        assert fake.address == MERCHANT_ADDRESS


def test_pool_and_confirmed_entries_have_the_samples_keys_and_types(wallet: FakeWallet) -> None:
    pool_sample = load_sample("get_transfers_pool_integrated_random")["response"]["result"]["pool"][0]
    in_sample = load_sample("get_transfers_integrated_random_1conf")["response"]["result"]["in"][0]
    # Values unlike the samples on purpose: only the shape must match.
    wallet.add_pool(payment_id="00000000deadbeef", amount=7)
    wallet.add_confirmed(payment_id="1111111111111111", amount=123, confirmations=3)
    answer = result(wallet.url, "get_transfers", {**POLL, "min_height": 0})
    assert set(answer) == {"in", "pool"}
    assert shape(answer["pool"][0]) == shape(pool_sample)
    assert shape(answer["in"][0]) == shape(in_sample)
    assert "confirmations" not in answer["pool"][0]
    assert answer["pool"][0]["type"] == "pool" and answer["pool"][0]["height"] == 0
    assert answer["in"][0]["confirmations"] == 3 and answer["in"][0]["height"] == 198


def test_replays_the_captured_regtest_session_answer_for_answer() -> None:
    """The whole captured merchant session, in order: every answer equals the real wallet's."""
    with FakeWallet(height=201) as fake:
        # An integrated-address payment (random payment id): pool, then 1 confirmation.
        fake.add_pool(
            "2868bb1d10044a9fe778d24314434fc6bc939a9efc47c9f911e4dd0f86b29c02",
            payment_id="0d6aab32d5ea2985",
            amount=1_500_000_000_000,
        )
        replay(fake, "get_transfers_pool_integrated_random")
        assert fake.mine() == 201
        replay(fake, "get_transfers_integrated_random_1conf")
        replay(fake, "get_transfers_min_height_equal_tx_height_EXCLUSIVE")
        # An explicit payment id, a subaddress payment with two outputs, a plain subaddress payment.
        fake.add_pool(
            "1cd0ed086a6a84462487e4fa273860e07da68107904c33cad903286758376787",
            payment_id="1234567890abcdef",
            amount=2_000_000_000_000,
        )
        fake.add_pool(
            "bdc1540a969fc2c86e3f287b2ea93982efa4b1e0dc4eb2e7c73b32de3e690fb3",
            payment_id="0000000000000000",
            amount=700_000_000_000,
            amounts=[300_000_000_000, 400_000_000_000],
            fee=3_328_800_000,
            subaddr_minor=1,
        )
        fake.add_pool(
            "23d81b50e068dba04f737ede069c28732f0cd8fdc3ddd9cc285b8503f7840215",
            payment_id="0000000000000000",
            amount=700_000_000_000,
            fee=2_605_200_000,
            subaddr_minor=1,
        )
        replay(fake, "get_transfers_pool_explicit_pid_and_subaddress")
        fake.mine()
        replay(fake, "get_transfers_all_1conf")
        fake.mine(9)
        replay(fake, "get_transfers_all_after_10_blocks")
        replay(fake, "get_transfer_by_txid_subaddr_two_outputs")
        replay(fake, "get_height_merchant")
        # Reorg: mined, popped (listed twice), mined again; then popped, flushed and re-mined without it.
        fake.add_pool(
            "fa9ecb3dad7224bb9ba6727e0af0c0a98f769c9c5cdd2bb5f8f2428694ffa1d8",
            payment_id="f5e2e6eca5920540",
            amount=123_000_000_000,
        )
        fake.mine()
        replay(fake, "reorg_1_mined")
        fake.pop_blocks(1)
        replay(fake, "reorg_2_after_pop")
        fake.mine()
        replay(fake, "reorg_3_remined_same_tx")
        fake.pop_blocks(1)
        fake.flush_pool()
        fake.apply_refresh()  # the sample's wallet auto-refreshed before this answer
        replay(fake, "reorg_4_after_pop_and_flush")
        fake.mine()
        replay(fake, "reorg_5_tx_dropped")
        replay(fake, "reorg_5_get_transfer_by_txid_dropped")
        # A double spend seen in the pool; the mined transaction is no longer flagged.
        fake.mine()
        fake.add_pool(
            "6fbf0a4d80cfa2c4e1fdbdac73075b471ecc705b6d666f398c74bc336dabe23e",
            payment_id="f5e2e6eca5920540",
            amount=35_181_926_159_807,
            fee=1_808_400_000,
            double_spend_seen=True,
        )
        replay(fake, "doublespend_merchant_pool_view")
        fake.mine()
        replay(fake, "doublespend_merchant_after_mining")
        # unlock_time 300: still locked with 11 confirmations.
        fake.add_pool(
            "69cdd42e0426b118c10bc1b01da06de6d81c2654931d245b65a9f6c2c792756a",
            payment_id="c14767de3d9459fc",
            amount=50_000_000_000,
            unlock_time=300,
        )
        replay(fake, "unlock_time_pool")
        fake.mine(11)
        replay(fake, "unlock_time_confirmed_11_blocks")
        replay(fake, "get_transfers_merchant_final_all")


def test_make_integrated_address_matches_the_real_wallet(wallet: FakeWallet) -> None:
    replay(wallet, "make_integrated_address_explicit")


# -- get_transfers semantics -----------------------------------------------------------------------------


def test_min_height_is_exclusive_and_max_height_inclusive(wallet: FakeWallet) -> None:
    txid = wallet.add_confirmed(payment_id="00000000000000aa", amount=1, height=150)

    def txids(**params: Any) -> list[str]:
        return [e["txid"] for e in result(wallet.url, "get_transfers", {"in": True, **params}).get("in", [])]

    assert txids(filter_by_height=True, min_height=150) == []
    assert txids(filter_by_height=True, min_height=149) == [txid]
    assert txids(filter_by_height=True, min_height=100, max_height=150) == [txid]
    assert txids(filter_by_height=True, min_height=100, max_height=149) == []
    assert txids(min_height=150) == [txid]  # without filter_by_height the heights are ignored


def test_pool_is_not_filtered_by_height_and_empty_lists_are_omitted(wallet: FakeWallet) -> None:
    assert result(wallet.url, "get_transfers", {**POLL, "min_height": 0}) == {}
    txid = wallet.add_pool(payment_id="00000000000000aa", amount=5)
    answer = result(wallet.url, "get_transfers", {**POLL, "min_height": 10_000})
    assert list(answer) == ["pool"] and answer["pool"][0]["txid"] == txid
    assert result(wallet.url, "get_transfers", {"in": True}) == {}
    wallet.mine()
    assert list(result(wallet.url, "get_transfers", {"pool": True, "in": False})) == []
    assert list(result(wallet.url, "get_transfers", {"in": True})) == ["in"]


def test_confirmations_and_locked_follow_the_wallet_height(wallet: FakeWallet) -> None:
    txid = wallet.add_pool(payment_id="00000000000000aa", amount=5)
    assert wallet.mine() == 201
    for expected in range(1, 13):
        entry = wallet.get_transfers(**{"in": True})["in"][0]
        assert entry["txid"] == txid
        assert entry["confirmations"] == expected == wallet.height - entry["height"]
        assert entry["locked"] is (expected < 10)
        wallet.mine()


def test_unlock_time_keeps_a_transfer_locked(wallet: FakeWallet) -> None:
    wallet.add_confirmed(payment_id="00000000000000aa", amount=5, confirmations=20, unlock_time=230)
    entry = wallet.get_transfers(**{"in": True})["in"][0]
    assert entry["locked"] is True and entry["suggested_confirmations_threshold"] == 29
    wallet.mine(29)
    entry = wallet.get_transfers(**{"in": True})["in"][0]
    assert entry["locked"] is False and entry["unlock_time"] == 230


def test_account_and_subaddress_filters(wallet: FakeWallet) -> None:
    primary = wallet.add_confirmed(payment_id="00000000000000aa", amount=1)
    sub = wallet.add_confirmed(payment_id="0000000000000000", amount=2, subaddr_minor=3)
    other = wallet.add_confirmed(payment_id="0000000000000000", amount=3, subaddr_major=1)

    def txids(**params: Any) -> set[str]:
        return {e["txid"] for e in wallet.get_transfers(**{"in": True, **params}).get("in", [])}

    assert txids() == {primary, sub}  # account 0 by default
    assert txids(account_index=0) == {primary, sub}
    assert txids(account_index=0, subaddr_indices=[3]) == {sub}
    assert txids(account_index=1) == {other}
    assert txids(all_accounts=True) == {primary, sub, other}
    entry = next(e for e in wallet.get_transfers(**{"in": True})["in"] if e["txid"] == sub)
    assert entry["subaddr_index"] == {"major": 0, "minor": 3} and entry["address"].startswith("8")


def test_bad_params_answer_invalid_params(wallet: FakeWallet) -> None:
    body = rpc(wallet.url, "get_transfers", {"in": True, "min_height": "x"})
    assert body["error"] == {"code": -32602, "message": "Invalid params"}


# -- reorgs, drops, double spends ----------------------------------------------------------------------------


def test_pop_of_a_transfer_never_seen_in_the_pool_lists_it_twice(wallet: FakeWallet) -> None:
    txid = wallet.add_confirmed(payment_id="00000000000000aa", amount=9, confirmations=1)
    wallet.pop_blocks(1)
    answer = wallet.get_transfers(**POLL, min_height=0)
    assert [e["txid"] for e in answer["in"]] == [txid] and answer["in"][0]["amount"] == 9
    assert answer["in"][0]["confirmations"] == 1  # the wallet has not seen the reorg yet
    (ghost,) = answer["pool"]
    assert ghost["txid"] == txid and ghost["amount"] == 0 and ghost["type"] == "pool"
    assert "amounts" not in ghost and "suggested_confirmations_threshold" not in ghost
    assert wallet.height == 201 and wallet.daemon_height == 200


def test_pop_of_a_transfer_seen_in_the_pool_lists_it_once(wallet: FakeWallet) -> None:
    txid = wallet.add_pool(payment_id="00000000000000aa", amount=9)
    assert wallet.get_transfers(**POLL)["pool"][0]["txid"] == txid  # a poll scans the pool
    wallet.mine()
    wallet.pop_blocks(1)
    answer = wallet.get_transfers(**POLL)
    assert list(answer) == ["in"] and answer["in"][0]["txid"] == txid
    wallet.pop_blocks(1, pool_entry=True)  # a deeper pop does not re-flag an already popped transfer
    assert list(wallet.get_transfers(**POLL)) == ["in"]


def test_popped_then_flushed_transfer_vanishes_when_new_blocks_come(wallet: FakeWallet) -> None:
    keep = wallet.add_confirmed(payment_id="00000000000000bb", amount=1, confirmations=5)
    gone = wallet.add_confirmed(payment_id="00000000000000aa", amount=9, confirmations=1)
    wallet.pop_blocks(1)
    wallet.flush_pool([gone])
    assert gone in {e["txid"] for e in wallet.get_transfers(**POLL)["pool"]}  # until the next refresh
    assert result(wallet.url, "refresh") == {"blocks_fetched": 0, "received_money": True}
    assert [e["txid"] for e in wallet.get_transfers(**POLL)["in"]] == [gone, keep]
    wallet.mine(2)
    assert [e["txid"] for e in wallet.get_transfers(**POLL)["in"]] == [keep]
    assert rpc(wallet.url, "get_transfer_by_txid", {"txid": gone})["error"]["code"] == -8
    assert wallet.height == 202


def test_popped_transfer_is_mined_again_at_the_new_height(wallet: FakeWallet) -> None:
    txid = wallet.add_confirmed(payment_id="00000000000000aa", amount=9, confirmations=3)
    wallet.pop_blocks(3)
    assert wallet.mine() == 198
    (entry,) = wallet.get_transfers(**POLL)["in"]
    assert entry["txid"] == txid and entry["height"] == 198 and entry["confirmations"] == 1
    assert wallet.height == 199


def test_mine_only_some_txids_and_drop(wallet: FakeWallet) -> None:
    first = wallet.add_pool(payment_id="00000000000000aa", amount=1)
    second = wallet.add_pool(payment_id="00000000000000bb", amount=2)
    wallet.mine(txids=[second])
    answer = wallet.get_transfers(**POLL)
    assert [e["txid"] for e in answer["in"]] == [second]
    assert [e["txid"] for e in answer["pool"]] == [first]
    wallet.drop(first)
    wallet.drop(second)
    assert wallet.get_transfers(**POLL) == {}
    with pytest.raises(KeyError):
        wallet.drop(first)


def test_double_spend_flag(wallet: FakeWallet) -> None:
    txid = wallet.add_pool(payment_id="00000000000000aa", amount=1)
    wallet.flag_double_spend(txid)
    assert wallet.get_transfers(pool=True)["pool"][0]["double_spend_seen"] is True
    wallet.mine()  # as observed: the mined transaction is no longer flagged
    assert wallet.get_transfers(**{"in": True})["in"][0]["double_spend_seen"] is False
    wallet.flag_double_spend(txid)  # fault injection on a confirmed entry
    assert wallet.get_transfers(**{"in": True})["in"][0]["double_spend_seen"] is True


def test_lazy_refresh_shows_blocks_only_after_refresh() -> None:
    with FakeWallet(height=300, lazy_refresh=True) as fake:
        txid = fake.add_pool(payment_id="00000000000000aa", amount=1)
        assert fake.mine(2) == 300
        assert fake.height == 300 and fake.daemon_height == 302
        answer = fake.get_transfers(**POLL)
        assert list(answer) == ["pool"] and answer["pool"][0]["txid"] == txid
        assert result(fake.url, "refresh") == {"blocks_fetched": 2, "received_money": True}
        (entry,) = fake.get_transfers(**POLL)["in"]
        assert entry["height"] == 300 and entry["confirmations"] == 2
        assert result(fake.url, "refresh") == {"blocks_fetched": 0, "received_money": False}


# -- faults ----------------------------------------------------------------------------------------------


def test_set_down_refuses_connections_and_keeps_the_port_and_state(wallet: FakeWallet) -> None:
    txid = wallet.add_pool(payment_id="00000000000000aa", amount=1)
    with requests.Session() as session:
        assert (
            session.post(wallet.url, json={"method": "get_height"}, timeout=5).json()["result"]["height"]
            == 201
        )
        wallet.set_down(True)
        assert wallet.is_down
        with pytest.raises(requests.ConnectionError):
            session.post(wallet.url, json={"method": "get_height"}, timeout=5)
        wallet.set_down(False)
        answer = session.post(
            wallet.url, json={"method": "get_transfers", "params": {"pool": True}}, timeout=5
        )
        assert answer.json()["result"]["pool"][0]["txid"] == txid
    assert wallet.calls["get_height"] == 1 and wallet.calls["get_transfers"] == 1


def test_set_delay_makes_clients_time_out_and_close_does_not_hang() -> None:
    fake = FakeWallet()
    try:
        fake.set_delay(30, "get_transfers")
        assert result(fake.url, "get_height") == {"height": 200}  # other methods are not delayed
        with pytest.raises(requests.Timeout):
            requests.post(fake.url, json={"method": "get_transfers", "params": {}}, timeout=0.3)
        fake.set_delay(0.2)
        started = time.monotonic()
        assert result(fake.url, "get_height") == {"height": 200}
        assert time.monotonic() - started >= 0.2
        fake.set_delay(30)
        asked = fake.calls["get_height"]
        threading.Thread(target=_swallow_post, args=(fake.url,), daemon=True).start()
        # The call is counted before its delay starts: from here it is held inside the server.
        wait_for("the delayed call", lambda: True if fake.calls["get_height"] > asked else None, 10)
    finally:
        started = time.monotonic()
        fake.close()
    assert time.monotonic() - started < 3


def _swallow_post(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.post(url, json={"method": "get_height"}, timeout=10)


def test_garbage_answers_are_http_200_without_json(wallet: FakeWallet) -> None:
    wallet.set_garbage(True)
    response = requests.post(wallet.url, json={"method": "get_height"}, timeout=5)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    wallet.set_garbage(False)
    assert result(wallet.url, "get_height") == {"height": 201}


def test_no_wallet_answers_minus_13_until_open_wallet(wallet: FakeWallet) -> None:
    wallet.set_no_wallet(True)
    for method in ("get_height", "get_transfers", "get_address", "refresh"):
        assert rpc(wallet.url, method)["error"] == {"code": -13, "message": "No wallet file"}
    assert "result" in rpc(wallet.url, "get_version")
    assert rpc(wallet.url, "no_such_method")["error"] == {"code": -32601, "message": "Method not found"}
    wrong = rpc(wallet.url, "open_wallet", {"filename": "merchant", "password": "nope"})
    assert wrong["error"] == {"code": -1, "message": "Failed to open wallet"}
    assert rpc(wallet.url, "open_wallet", {"filename": "merchant", "password": ""})["result"] == {}
    assert result(wallet.url, "get_height") == {"height": 201}


def test_restart_is_down_then_up_without_a_wallet(wallet: FakeWallet) -> None:
    port = wallet.port
    wallet.restart()
    assert wallet.port == port
    assert rpc(wallet.url, "get_height")["error"]["code"] == -13


def test_fail_next_modes_and_counts(wallet: FakeWallet) -> None:
    wallet.fail_next("get_height", times=2, code=-9, message="boom")
    assert rpc(wallet.url, "get_height")["error"] == {"code": -9, "message": "boom"}
    assert rpc(wallet.url, "get_height")["error"] == {"code": -9, "message": "boom"}
    assert result(wallet.url, "get_height") == {"height": 201}

    wallet.fail_next("get_transfers", mode="http_500")
    assert requests.post(wallet.url, json={"method": "get_transfers"}, timeout=5).status_code == 500
    wallet.fail_next("*", mode="disconnect")
    with pytest.raises(requests.ConnectionError):
        requests.post(wallet.url, json={"method": "get_address"}, timeout=5)
    wallet.fail_next("get_height", mode="garbage")
    with pytest.raises(ValueError):
        requests.post(wallet.url, json={"method": "get_height"}, timeout=5).json()
    assert result(wallet.url, "get_transfers", {"in": True}) == {}

    assert wallet.calls["get_height"] == 4
    assert wallet.calls["get_transfers"] == 2
    assert wallet.calls["get_address"] == 1
    assert wallet.params_of("get_transfers")[-1] == {"in": True}


def test_json_rpc_envelope_errors_like_the_real_wallet(wallet: FakeWallet) -> None:
    assert rpc(wallet.url, "get_height", rid=7)["id"] == 7
    parse = requests.post(wallet.url, data=b"garbage", timeout=5).json()
    assert parse == {"error": {"code": -32700, "message": "Parse error"}, "id": 0, "jsonrpc": "2.0"}
    get = requests.get(wallet.url, timeout=5).json()
    assert get["error"] == {"code": -32600, "message": "Invalid Request"}
    assert requests.post(wallet.url.replace("/json_rpc", "/other"), json={}, timeout=5).status_code == 404


def test_keep_alive_connections_are_cut_when_the_wallet_goes_down(wallet: FakeWallet) -> None:
    with requests.Session() as session:
        for _ in range(3):
            assert session.post(wallet.url, json={"method": "get_height"}, timeout=5).status_code == 200
        wallet.set_down(True)
        with pytest.raises(requests.ConnectionError):
            session.post(wallet.url, json={"method": "get_height"}, timeout=5)
        wallet.set_down(False)
        assert session.post(wallet.url, json={"method": "get_height"}, timeout=5).status_code == 200


def test_concurrent_clients_while_the_chain_moves(wallet: FakeWallet) -> None:
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            with requests.Session() as session:
                for _ in range(20):
                    body = session.post(
                        wallet.url, json={"method": "get_transfers", "params": POLL}, timeout=5
                    )
                    assert body.status_code == 200 and "result" in body.json()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        wallet.add_pool(payment_id="00000000000000aa", amount=1)
        wallet.mine()
    for thread in threads:
        thread.join()
    assert not errors
    assert wallet.calls["get_transfers"] == 80
    assert len(wallet.get_transfers(**{"in": True})["in"]) == 20


# -- digest auth -------------------------------------------------------------------------------------------


def test_digest_auth_like_rpc_login() -> None:
    with FakeWallet(user="alice", password="secret") as fake:
        response = requests.post(fake.url, json={"method": "get_height"}, timeout=5)
        assert response.status_code == 401
        challenges = response.raw.headers.getlist("WWW-authenticate")
        assert [c.split(",")[1] for c in challenges] == ["algorithm=MD5", "algorithm=MD5-sess"]
        assert all('qop="auth"' in c and 'realm="monero-rpc"' in c for c in challenges)

        good = rpc(fake.url, "get_height", auth=HTTPDigestAuth("alice", "secret"))
        assert good["result"] == {"height": 200}
        with requests.Session() as session:  # several calls on one keep-alive connection
            session.auth = HTTPDigestAuth("alice", "secret")
            for _ in range(3):
                assert session.post(fake.url, json={"method": "get_height"}, timeout=5).status_code == 200

        bad = requests.post(
            fake.url, json={"method": "get_height"}, auth=HTTPDigestAuth("alice", "nope"), timeout=5
        )
        assert bad.status_code == 401
        assert fake.calls["get_height"] == 4  # unauthenticated requests are not counted


def test_digest_auth_plain_md5_computed_by_hand() -> None:
    # One session, so one kept-alive connection: like epee, the fake accepts a nonce only on the
    # connection it was issued on.
    with FakeWallet(user="alice", password="secret") as fake, requests.Session() as session:
        challenge = session.post(fake.url, json={"method": "get_height"}, timeout=5).headers[
            "WWW-authenticate"
        ]
        nonce = challenge.split('nonce="')[1].split('"')[0]

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1, ha2 = md5("alice:monero-rpc:secret"), md5("POST:/json_rpc")
        response = md5(f"{ha1}:{nonce}:00000001:abcdef:auth:{ha2}")
        header = (
            f'Digest username="alice", realm="monero-rpc", nonce="{nonce}", uri="/json_rpc", '
            f'algorithm=MD5, qop=auth, nc=00000001, cnonce="abcdef", response="{response}"'
        )
        ok = session.post(
            fake.url, json={"method": "get_height"}, headers={"Authorization": header}, timeout=5
        )
        assert ok.status_code == 200 and ok.json()["result"] == {"height": 200}
        forged = header.replace(response, md5("forged"))
        denied = session.post(
            fake.url, json={"method": "get_height"}, headers={"Authorization": forged}, timeout=5
        )
        assert denied.status_code == 401
        elsewhere = requests.post(
            fake.url, json={"method": "get_height"}, headers={"Authorization": header}, timeout=5
        )
        assert elsewhere.status_code == 401  # the same nonce on another connection


def test_fixture_gives_a_fresh_wallet(fake_wallet: FakeWallet) -> None:
    assert fake_wallet.height == 200 and fake_wallet.url.endswith("/json_rpc")
    assert result(fake_wallet.url, "get_address", {"account_index": 0})["address"] == MERCHANT_ADDRESS
