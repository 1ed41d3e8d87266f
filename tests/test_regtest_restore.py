"""A real merchant wallet restored from its seed while buyers redeem (docs/PROTOCOL.md §9), on regtest.

The merchant's monero-wallet-rpc is stopped, its wallet files are moved away, and it is started again
on a fresh restore of the same wallet from its seed with a restore height far back, so it must scan
the whole chain again. Meanwhile buyers keep redeeming and the operator's services keep checking
their tokens; a payment is made while the wallet is gone. Nothing may be revoked, no transfer may be
stored twice, and the daemon must catch up by itself (no `rescan`, no restart).

Measured here: monero-wallet-rpc 0.18 rescans inside `restore_deterministic_wallet` (about 20 s for a
short regtest chain) and inside each `refresh`, so the daemon sees failed or slow calls rather than
a low height; the height regression itself is covered against the fake wallet (test_wallet_faults.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from anon_ticket.core.domain import PaymentId
from tests.support.buyer import expected_token
from tests.support.regtest import RegtestChain
from tests.test_regtest_e2e import (
    CONFIRMATIONS,
    MIN_AMOUNT,
    Shop,
    ensure_merchant_wallet_open,
    wallet_view,
)

pytestmark = pytest.mark.regtest

RESTORE_HEIGHT = 1  # as far back as it goes: every block is scanned again
REDEEM_EVERY_SECS = 2.5


class Watch:
    """Buyers replaying their claimed PIDs and services checking their tokens, in a loop."""

    def __init__(self, shop: Shop, claims: dict[PaymentId, dict[str, object]]) -> None:
        self.shop = shop
        self.claims = claims
        self.seen: list[tuple[str, int, str]] = []
        self.faults_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        last_redeem = 0.0
        while not self._stop.is_set():
            # A buyer's client retries every 15 s; every 2.5 s stays under ABUSE_PID_PER_MINUTE.
            redeem = time.monotonic() - last_redeem >= REDEEM_EVERY_SECS
            if redeem:
                last_redeem = time.monotonic()
            for pid, claim in self.claims.items():
                if redeem:
                    status, body = self.shop.redeem(pid)
                    answer = body.get("status") if status == 200 else str(body)
                    self.seen.append(("redeem", status, str(answer)))
                record = self.shop.daemon.internal("GET", f"/api/v1/token/{claim['token']}")
                self.seen.append(("token", record.status_code, str(record.json().get("status"))))
            error = self.shop.status()["wallet"]["last_error"] or ""
            self.faults_seen += "wallet fault" in error
            self._stop.wait(0.1)

    def problems(self) -> list[tuple[str, int, str]]:
        fine = {("redeem", 200, "already_claimed"), ("token", 200, "active")}
        return [entry for entry in self.seen if entry not in fine]


def test_a_restored_wallet_resyncing_from_far_back_revokes_and_doubles_nothing(
    regtest_chain: RegtestChain, tmp_path: Path
) -> None:
    chain = regtest_chain
    shop = Shop(chain, tmp_path)
    shop.daemon.start()
    try:
        shop.daemon.wait_scanning()
        before = [PaymentId.generate() for _ in range(2)]
        paid = {pid: shop.pay(pid, MIN_AMOUNT) for pid in before}
        shop.mine(CONFIRMATIONS)
        claims = {pid: shop.wait_redeem(pid, 200) for pid in before}
        seed = str(chain.merchant.call("query_key", key_type="mnemonic")["key"])
        address = chain.merchant.address
        highest_before = shop.status()["wallet"]["height"]

        during = PaymentId.generate()
        started = time.monotonic()
        with Watch(shop, claims) as watch:
            chain.merchant.process.stop()  # the operator takes the wallet away...
            aside = tmp_path / "wallet-before-restore"
            aside.mkdir()
            for file in list(chain.merchant.wallet_dir.iterdir()):
                file.rename(aside / file.name)
            paid[during] = shop.pay(during, MIN_AMOUNT)  # ...while a buyer pays
            chain.merchant.start_process()
            chain.merchant.wait_ready()
            chain.merchant.call(
                "restore_deterministic_wallet",
                filename=chain.merchant.filename,
                password=chain.merchant.password,
                seed=seed,
                restore_height=RESTORE_HEIGHT,
                language="English",
            )
            chain.merchant.enable_auto_refresh(1)
            assert chain.merchant.call("get_address", account_index=0)["address"] == address
            height = shop.mine(CONFIRMATIONS, wait=False)
            restored = time.monotonic()
            shop.wait_polled(height, timeout=90)  # caught up by itself
            caught_up = time.monotonic()
            late = shop.wait_redeem(during, 200)
        print(
            f"\nrestore: {len(watch.seen)} checks while the wallet was restored, {watch.faults_seen} "
            f"status reads showed the wallet fault; highest height before: {highest_before}; "
            f"restore took {restored - started:.1f} s, caught up {caught_up - restored:.1f} s later"
        )
        assert watch.seen and watch.problems() == [], (watch.problems()[:5], shop.daemon.log_tail(60))
        for claim in claims.values():
            assert shop.token_record(str(claim["token"]))["status"] == "active"
        status = shop.status()
        assert status["tokens"] == {"active": 3, "revoked": 0}
        assert status["wallet"]["last_error"] is None
    finally:
        ensure_merchant_wallet_open(chain)
        code = shop.daemon.stop()
    assert code == 0, shop.daemon.log_tail()
    assert (late["status"], late["token"]) == ("claimed", expected_token(during, paid[during]))
    # Exactly one row per transfer the restored wallet reports, with its amounts and heights.
    expected = sorted(wallet_view(chain, txid) for txid in paid.values())
    assert shop.transfer_rows(*paid) == expected
    log = shop.daemon.log_text()
    assert "Traceback" not in log and "token revoked" not in log
