-- The operator's daily figures on the admin panel (docs/PROTOCOL.md §5); the same as
-- sql/sqlite/0004_panel_figures.sql. Times only, never a PID or a token: when the poller first saw a
-- transfer and when it last reached its confirmations. NULL for transfers recorded before this version.
ALTER TABLE transfers ADD COLUMN first_seen_at BIGINT;  -- unix seconds of the poll that first saw it
ALTER TABLE transfers ADD COLUMN counted_at BIGINT;     -- unix seconds of the poll that counted it

-- XMR counted per day and payments waiting per day read transfers counted in the last 30 days only.
CREATE INDEX transfers_counted_at ON transfers (counted_at) WHERE counted_at IS NOT NULL;

-- Claims per day.
CREATE INDEX claims_claimed_at ON claims (claimed_at);
