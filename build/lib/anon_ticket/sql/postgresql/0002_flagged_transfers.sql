-- Transfers recorded but never counted (non-zero unlock_time, double spend seen) are shown to the
-- operator on the admin panel (docs/PROTOCOL.md §3). They are rare; this partial index holds only them.
CREATE INDEX transfers_flagged ON transfers (height) WHERE (flags & 3) <> 0;
