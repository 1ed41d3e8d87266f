-- Paid time for the access gateway (docs/PROTOCOL.md §13, ACCESS_SECONDS_PER_PAYMENT).
-- Both NULL for a claim made without an access policy: such a token is good until revoked.
ALTER TABLE claims ADD COLUMN access_until INTEGER;     -- unix seconds: the end of the paid time
ALTER TABLE claims ADD COLUMN access_credited INTEGER;  -- the counted amount already turned into time
