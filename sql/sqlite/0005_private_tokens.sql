-- Privacy Pass (docs/PROTOCOL.md §12): the issuer's counts and the spent tokens, in two halves that share
-- nothing. No timestamp, no blinded message, no nonce, no signature: only what each check needs.
-- WITHOUT ROWID everywhere, so a row's place in the file follows its key (a digest), not when it came.

-- Issuance side: how many private tokens each claim has had signed (its allowance is computed from the
-- payment's counted amount at each request, so later payments raise it).
CREATE TABLE private_token_issuance (
    payment_id BLOB PRIMARY KEY CHECK (length(payment_id) = 8) REFERENCES claims (payment_id),
    issued     INTEGER NOT NULL CHECK (issued >= 0)
) WITHOUT ROWID;

-- Issuance side: SHA-256 of each blinded message a claim has had signed, so the same TokenRequest
-- again is answered again (the signature is deterministic: re-signed, not stored) and costs nothing.
CREATE TABLE private_token_requests (
    payment_id     BLOB NOT NULL CHECK (length(payment_id) = 8) REFERENCES claims (payment_id),
    request_digest BLOB NOT NULL CHECK (length(request_digest) = 32),
    PRIMARY KEY (payment_id, request_digest)
) WITHOUT ROWID;

-- Spend side: SHA-256 of each spent token's nonce, per issuer key (SHA-256 of its SPKI). The primary
-- key is what makes a second spend fail, on every node at once.
CREATE TABLE private_token_spends (
    key_id       BLOB NOT NULL CHECK (length(key_id) = 32),
    nonce_digest BLOB NOT NULL CHECK (length(nonce_digest) = 32),
    PRIMARY KEY (key_id, nonce_digest)
) WITHOUT ROWID;

-- The operator's figures: issued and spent per UTC day (days since 1970-01-01), as totals only. A day
-- is spread over a few `shard` rows so that nodes of a PostgreSQL cluster do not queue on one row;
-- SQLite uses shard 0. Totals per day cannot pair one spend with one issuance.
CREATE TABLE private_token_days (
    day    INTEGER NOT NULL CHECK (day >= 0),
    shard  INTEGER NOT NULL CHECK (shard >= 0),
    issued INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0),
    spent  INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
    PRIMARY KEY (day, shard)
) WITHOUT ROWID;
