"""The buyer's page derives in JavaScript exactly what the Python code derives (docs/PROTOCOL.md §2, §10).

The page's own file (anon_ticket/api/static/buyer-core.js) runs in node with the vendored js-sha3,
unchanged, through tests/support/buyer_core_node.js; every answer is compared with anon_ticket.core.domain
and anon_ticket.client.address, for the §2 vectors, real wallet answers and 1,000 random PIDs. The
vendored files themselves are checked against the npm lockfile (scripts/vendor_js.py --check).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anon_ticket.client import base58
from anon_ticket.client.address import Network, PrimaryAddress, integrated_address
from anon_ticket.core.domain import ChainPaymentId, PaymentId, TxId
from tests.support.addresses import PRIMARY, SUBADDRESS, WALLET_ANSWERS
from tests.support.services import need

REPO = Path(__file__).resolve().parents[1]
NODE_HARNESS = REPO / "tests" / "support" / "buyer_core_node.js"
RANDOM_PIDS = 1000
NODE_INSTALL = "Debian packages nodejs and npm; CI must have them"


def run_js(*calls: list[Any]) -> list[Any]:
    """Each call `[function, *arguments]` of AnonTicket in node; its value, or JsError."""
    node = need("node", NODE_INSTALL)
    result = subprocess.run(
        [node, str(NODE_HARNESS)],
        input=json.dumps({"calls": list(calls)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: list[dict[str, Any]] = json.loads(result.stdout)
    return [a["ok"] if "ok" in a else JsError(a["error"]) for a in answers]


class JsError:
    """What a JavaScript function threw."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"JsError({self.message!r})"


def _bytes(data: bytes) -> dict[str, list[int]]:
    return {"bytes": list(data)}


def test_section_2_vectors() -> None:
    one = "00" * 31 + "01"
    a3 = "a3" * 32
    assert run_js(
        ["paymentId", one],
        ["paymentId", a3],
        ["serviceToken", one, bytes(range(32)).hex()],
        ["serviceToken", a3, "5c" * 32],
    ) == [
        "64c1f13de004fb79",
        "43e27509eb504ae9",
        "cc26cd8284acddaed0d7e7065401f5d41eb23007330e4eac74fb7e5943ce5649",
        "ad850f91d86e98771caed1e9f2c8839cedab99896901295982a28626328cedfd",
    ]


def test_integrated_addresses_equal_the_wallets_answers() -> None:
    answers = run_js(*(["integratedAddress", PRIMARY, pid] for pid in WALLET_ANSWERS))
    assert answers == list(WALLET_ANSWERS.values())


def test_a_thousand_random_pids_derive_as_in_python() -> None:
    rng = random.Random(13)
    primaries = [PRIMARY] + [
        str(PrimaryAddress(network, rng.randbytes(32), rng.randbytes(32))) for network in Network
    ]
    calls: list[list[Any]] = []
    expected: list[str] = []
    for n in range(RANDOM_PIDS):
        pid = PaymentId(rng.randbytes(32))
        txid = TxId(rng.randbytes(32))
        primary = primaries[n % len(primaries)]
        payment_id = pid.chain_payment_id()
        # Mixed case in, lowercase out, as the API and the PID file accept it.
        text = pid.hex().upper() if n % 3 == 0 else pid.hex()
        calls += [
            ["parsePid", text],
            ["paymentId", pid.hex()],
            ["integratedAddress", primary, payment_id.hex()],
            ["serviceToken", pid.hex(), txid.hex()],
        ]
        expected += [
            pid.hex(),
            payment_id.hex(),
            integrated_address(primary, payment_id),
            pid.service_token(txid).hex(),
        ]
    answers = run_js(*calls)
    mismatches = [(c, a, e) for c, a, e in zip(calls, answers, expected, strict=True) if a != e]
    assert not mismatches, mismatches[:5]


def test_base58_equals_ours_at_every_block_length() -> None:
    rng = random.Random(58)
    samples = [b"", b"\x00", b"\x00" * 8, b"\xff" * 8, b"\xff" * 9] + [
        rng.randbytes(length) for length in range(1, 40) for _ in range(3)
    ]
    encoded = run_js(*(["base58Encode", _bytes(s)] for s in samples))
    assert encoded == [base58.encode(s) for s in samples]
    decoded = run_js(*(["base58Decode", e] for e in encoded))
    assert decoded == [_bytes(s) for s in samples]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1111", "a block of 4 characters is impossible"),
        ("zzzzzzzzzzz", "overflows"),
        ("111111111O1", "not a base58 character"),
        ("111111l", "not a base58 character"),
    ],
)
def test_base58_decoding_is_strict(text: str, why: str) -> None:
    (answer,) = run_js(["base58Decode", text])
    assert isinstance(answer, JsError) and why in answer.message


def test_only_a_primary_address_with_a_good_checksum_gets_a_payment_id() -> None:
    typo = PRIMARY[:50] + ("A" if PRIMARY[50] != "A" else "B") + PRIMARY[51:]
    answers = run_js(
        ["integratedAddress", typo, "1234567890abcdef"],
        ["integratedAddress", SUBADDRESS, "1234567890abcdef"],
        ["integratedAddress", WALLET_ANSWERS["1234567890abcdef"], "1234567890abcdef"],
        ["integratedAddress", "", "1234567890abcdef"],
        ["integratedAddress", PRIMARY, "1234"],
    )
    assert all(isinstance(a, JsError) for a in answers), answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ab" * 32, "ab" * 32),
        ("AB" * 32 + "\n", "ab" * 32),  # the PID file: one line
        ("  " + "0f" * 32 + "\r\n", "0f" * 32),
        ("ab" * 31, None),
        ("ab" * 33, None),
        ("0x" + "ab" * 31, None),
        ("ab" * 16 + " " + "ab" * 16, None),
        ("g" * 64, None),
        ("٣" * 64, None),  # Unicode digits are not hex digits
        ("", None),
    ],
)
def test_parse_pid_accepts_exactly_what_python_accepts(text: str, expected: str | None) -> None:
    assert run_js(["parsePid", text]) == [expected]


def test_new_pids_are_64_hex_and_different() -> None:
    pids = run_js(*(["newPid"] for _ in range(50)))
    assert len(set(pids)) == 50
    assert all(PaymentId.parse(p).hex() == p for p in pids)


def test_pid_file_is_what_client_new_writes() -> None:
    pid = PaymentId.generate()
    assert run_js(["pidFileText", pid.hex()]) == [pid.hex() + "\n"]


@pytest.mark.parametrize(
    ("atomic", "text"),
    [
        (10_000_000_000, "0.01"),
        (100_000_000_000, "0.1"),
        (10**12, "1"),
        (1, "0.000000000001"),
        (0, "0"),
        (123_456_789_000_000, "123.456789"),
        (2**53 - 1, "9007.199254740991"),
    ],
)
def test_amounts_in_xmr(atomic: int, text: str) -> None:
    assert run_js(["xmr", atomic], ["moneroUri", "ADDR", atomic]) == [text, f"monero:ADDR?tx_amount={text}"]


def test_amounts_beyond_exact_javascript_numbers_are_refused() -> None:
    answers = run_js(["xmr", 2**53], ["xmr", -1], ["xmr", 0.5])
    assert all(isinstance(a, JsError) for a in answers), answers


def test_vendored_javascript_matches_the_lockfile() -> None:
    """The files served under /static/vendor/ are byte for byte what npm installs from the lockfile."""
    need("npm", NODE_INSTALL)
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "vendor_js.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())
    packages = lock["packages"]
    # Pinned exactly, with an integrity hash npm verified.
    for name in ("js-sha3", "qrcode-generator"):
        entry = packages[f"node_modules/{name}"]
        assert entry["integrity"].startswith("sha512-")
        assert packages[""]["dependencies"][name] == entry["version"]


def test_chain_payment_id_helper_agrees() -> None:
    """The JS takes the payment id as hex; Python's ChainPaymentId.parse reads the same text."""
    pid = PaymentId.generate()
    (text,) = run_js(["paymentId", pid.hex()])
    assert ChainPaymentId.parse(text) == pid.chain_payment_id()
