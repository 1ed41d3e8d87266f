-- anon_ticket schema v1 (PostgreSQL): the same logical schema as sql/sqlite/0001_initial.sql.
-- Keys and digests are BYTEA with length checks, statuses SMALLINT; no PID and no token is ever
-- stored (docs/PROTOCOL.md §2). Amounts and times are BIGINT (atomic units, unix seconds), heights INTEGER
-- (2^31 blocks is four thousand years of Monero). Tables go to the first schema of search_path, so one
-- database can host several instances, each with `?options=-csearch_path%3D<schema>` in its URL.

-- One row per incoming transaction per payment id, as last reported by the wallet.
-- Totals are always recomputed from these rows, so a reorg can be undone and nothing counts twice.
CREATE TABLE transfers (
    payment_id BYTEA    NOT NULL CHECK (octet_length(payment_id) = 8),
    txid       BYTEA    NOT NULL CHECK (octet_length(txid) = 32),
    amount     BIGINT   NOT NULL CHECK (amount >= 0),      -- atomic units
    height     INTEGER  NOT NULL CHECK (height >= 0),      -- 0 while in the pool
    flags      SMALLINT NOT NULL DEFAULT 0 CHECK (flags >= 0),  -- 1 locked, 2 double spend, 4 gone
    settled    BOOLEAN  NOT NULL DEFAULT false,            -- true once below every rescan window
    PRIMARY KEY (payment_id, txid)
);

-- The poller compares only transfers inside its rescan window with the wallet; this partial index
-- holds just those (the recent and the pooled), so it stays small whatever the history.
CREATE INDEX transfers_unsettled ON transfers (height) WHERE NOT settled;

-- One row per redeemed payment: the claim is bound to one txid forever.
CREATE TABLE claims (
    payment_id    BYTEA    PRIMARY KEY CHECK (octet_length(payment_id) = 8),
    claim_txid    BYTEA    NOT NULL CHECK (octet_length(claim_txid) = 32),
    token_digest  BYTEA    NOT NULL CHECK (octet_length(token_digest) = 32),  -- SHA3-256(token)
    claimed_at    BIGINT   NOT NULL,                                          -- unix seconds
    min_amount    BIGINT   NOT NULL,                  -- MIN_PAYMENT_AMOUNT at the claim
    status        SMALLINT NOT NULL DEFAULT 1 CHECK (status IN (1, 2, 3)),  -- active, revoked, reorged
    revoked_at    BIGINT,
    revoke_reason TEXT                                -- the operator's words, if any
);

-- Token look-ups by digest go through an 8-byte prefix (a 24-byte index tuple instead of 48); the
-- query compares the whole digest after the prefix. The expression must match the store's query.
CREATE INDEX claims_token_prefix ON claims (substr(token_digest, 1, 8));

-- Reorg-revoked claims are re-judged on every poll; there are few, and this index finds them.
CREATE INDEX claims_reorged ON claims (payment_id) WHERE status = 3;

-- The poller's state: one row. Claims share a lock on it and a poll's batch takes it exclusively,
-- which is how a claim never binds to a transfer that a concurrent batch has just removed.
CREATE TABLE monitor_state (
    id             SMALLINT PRIMARY KEY CHECK (id = 1),
    wallet_address TEXT,            -- the wallet this database is bound to
    scan_floor     INTEGER,         -- lowest height ever scanned (MONITOR_START_HEIGHT or first height)
    scan_cursor    INTEGER,         -- every transfer below this height has been applied
    wallet_height  INTEGER,         -- the wallet's height at the last applied poll
    last_poll_at   BIGINT
);
INSERT INTO monitor_state (id) VALUES (1);
