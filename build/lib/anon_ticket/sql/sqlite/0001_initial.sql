-- anon_ticket schema v1 (SQLite).
-- Keys and digests are BLOBs, statuses small integers; no PID and no token is ever stored (docs/PROTOCOL.md §2).
-- Sizes are what scripts/storage_size.py reports at 1M payments.

-- One row per incoming transaction per payment id, as last reported by the wallet.
-- Totals are always recomputed from these rows, so a reorg can be undone and nothing counts twice.
CREATE TABLE transfers (
    payment_id BLOB NOT NULL CHECK (length(payment_id) = 8),
    txid       BLOB NOT NULL CHECK (length(txid) = 32),
    amount     INTEGER NOT NULL CHECK (amount >= 0),      -- atomic units
    height     INTEGER NOT NULL CHECK (height >= 0),      -- 0 while in the pool
    flags      INTEGER NOT NULL DEFAULT 0,                -- 1 locked (unlock_time), 2 double spend, 4 gone
    settled    INTEGER NOT NULL DEFAULT 0,                -- 1 once below every rescan window
    PRIMARY KEY (payment_id, txid)
) WITHOUT ROWID;

-- The poller compares only transfers inside its rescan window with the wallet; this partial index
-- holds just those (the recent and the pooled), so it stays small whatever the history.
CREATE INDEX transfers_unsettled ON transfers (height) WHERE settled = 0;

-- One row per redeemed payment: the claim is bound to one txid forever.
CREATE TABLE claims (
    payment_id    BLOB PRIMARY KEY CHECK (length(payment_id) = 8),
    claim_txid    BLOB NOT NULL CHECK (length(claim_txid) = 32),
    token_digest  BLOB NOT NULL CHECK (length(token_digest) = 32),  -- SHA3-256(token)
    claimed_at    INTEGER NOT NULL,                                 -- unix seconds
    min_amount    INTEGER NOT NULL,                                 -- MIN_PAYMENT_AMOUNT at the claim
    status        INTEGER NOT NULL DEFAULT 1,                       -- 1 active, 2 revoked, 3 payment_reorged
    revoked_at    INTEGER,
    revoke_reason TEXT                                              -- the operator's words, if any
) WITHOUT ROWID;

-- Token look-ups by digest go through an 8-byte prefix: a full 32-byte index would cost ~40 more
-- bytes per claim; the query compares the whole digest after the prefix.
CREATE INDEX claims_token_prefix ON claims (substr(token_digest, 1, 8));

-- Reorg-revoked claims are re-judged on every poll; there are few, and this index finds them.
CREATE INDEX claims_reorged ON claims (payment_id) WHERE status = 3;

-- The poller's state: one row.
CREATE TABLE monitor_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    wallet_address TEXT,            -- the wallet this database is bound to
    scan_floor     INTEGER,         -- lowest height ever scanned (MONITOR_START_HEIGHT or first height)
    scan_cursor    INTEGER,         -- every transfer below this height has been applied
    wallet_height  INTEGER,         -- the wallet's height at the last applied poll
    last_poll_at   INTEGER
);
INSERT INTO monitor_state (id) VALUES (1);
