-- Privacy Pass (docs/PROTOCOL.md §12); the same logical schema as sql/sqlite/0005_private_tokens.sql:
-- the issuer's counts and the spent tokens, in two halves that share nothing. No timestamp, no blinded
-- message, no nonce, no signature: only what each check needs.

-- Issuance side: how many private tokens each claim has had signed. Its row is the lock that keeps
-- concurrent issuances on every node within the allowance (SELECT … FOR UPDATE).
CREATE TABLE private_token_issuance (
    payment_id BYTEA  PRIMARY KEY CHECK (octet_length(payment_id) = 8) REFERENCES claims (payment_id),
    issued     BIGINT NOT NULL CHECK (issued >= 0)
);

-- Issuance side: SHA-256 of each blinded message a claim has had signed (a retry is answered again).
CREATE TABLE private_token_requests (
    payment_id     BYTEA NOT NULL CHECK (octet_length(payment_id) = 8) REFERENCES claims (payment_id),
    request_digest BYTEA NOT NULL CHECK (octet_length(request_digest) = 32),
    PRIMARY KEY (payment_id, request_digest)
);

-- Spend side: SHA-256 of each spent token's nonce, per issuer key (SHA-256 of its SPKI). The primary
-- key makes a second spend fail, atomically across nodes (INSERT … ON CONFLICT DO NOTHING).
CREATE TABLE private_token_spends (
    key_id       BYTEA NOT NULL CHECK (octet_length(key_id) = 32),
    nonce_digest BYTEA NOT NULL CHECK (octet_length(nonce_digest) = 32),
    PRIMARY KEY (key_id, nonce_digest)
);

-- The operator's figures: issued and spent per UTC day, as totals only, spread over a few shard rows
-- (chosen at random per transaction) so that nodes do not queue on one hot row.
CREATE TABLE private_token_days (
    day    INTEGER NOT NULL CHECK (day >= 0),
    shard  SMALLINT NOT NULL CHECK (shard >= 0),
    issued BIGINT NOT NULL DEFAULT 0 CHECK (issued >= 0),
    spent  BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
    PRIMARY KEY (day, shard)
);
