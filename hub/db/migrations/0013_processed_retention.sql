-- Retention of processed message ids (`hub processed purge --older-than-days N`):
-- a row says a message id was processed (its outcome, child, digest); it lets a
-- redelivered or republished message be recognised. Redeliveries come within
-- minutes; a copy of an update older than the retention is still caught by its
-- source link's version (stale_version), so old rows only grow the table.
GRANT DELETE ON processed_messages TO hub_operator;
