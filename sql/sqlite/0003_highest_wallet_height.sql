-- The highest wallet height this database has seen (docs/PROTOCOL.md §9). A wallet that reports a height
-- far below it was restored or is resyncing: a wallet fault, not a reorg. Raised by every applied poll,
-- never lowered (not even by `rescan --from`, which moves only the cursor).
ALTER TABLE monitor_state ADD COLUMN highest_height INTEGER;
UPDATE monitor_state SET highest_height = wallet_height WHERE id = 1;
