-- The open review items of a source record, found by the record (identities_for's
-- 'w' rows): while a version of it waits for a person, an older or equal version is
-- a no-op (hub.decide, `waiting_version`), not one more item for the same change.
CREATE INDEX IF NOT EXISTS parked_waiting ON parked (source, source_record_id, source_version)
    WHERE kind = 'review' AND status = 'open';

-- The pipeline reads which versions wait, not what they hold (no payloads).
GRANT SELECT (kind, status, source, source_record_id, source_version) ON parked TO hub_worker;
