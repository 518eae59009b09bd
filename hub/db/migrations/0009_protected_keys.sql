-- An update tied to its record by NHS number (or by a source link) needs only the
-- shielded and severed candidates beside it: every key of such a child is also
-- stored with the prefix '!' (hub.match.blocking.PROTECTED, stored_keys), and this
-- small partial index serves the lookups of those copies, so the pipeline need not
-- read the ordinary candidates of most updates (hub.db.store.load_into).
INSERT INTO block_keys (key, child_id)
SELECT '!' || b.key, b.child_id
FROM block_keys b JOIN children c USING (child_id)
WHERE (c.shielded OR c.severed) AND NOT starts_with(b.key, '!')
ON CONFLICT DO NOTHING;

CREATE INDEX block_keys_protected ON block_keys (key, child_id) WHERE starts_with(key, '!');
