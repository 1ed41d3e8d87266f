-- Paid time for the access gateway (docs/PROTOCOL.md §13, ACCESS_SECONDS_PER_PAYMENT); the same as
-- sql/sqlite/0006_access_policy.sql. Both NULL for a claim made without an access policy: such a
-- token is good until revoked.
ALTER TABLE claims ADD COLUMN access_until BIGINT;      -- unix seconds: the end of the paid time
ALTER TABLE claims ADD COLUMN access_credited NUMERIC;  -- the counted amount already turned into time
