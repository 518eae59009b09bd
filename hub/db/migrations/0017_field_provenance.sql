-- Which source wrote each field a record holds now: the field's own provenance row,
-- else the row naming every field ('*') that the record's creation wrote (migration
-- 0016). Field names and source ids only, never a value: operators read it.
CREATE OR REPLACE VIEW field_provenance AS
SELECT c.child_id, f.field,
       coalesce(p.source, a.source) AS source,
       coalesce(p.source_record_id, a.source_record_id) AS source_record_id,
       coalesce(p.source_version, a.source_version) AS source_version,
       coalesce(p.recorded_at, a.recorded_at) AS recorded_at
FROM children c
CROSS JOIN LATERAL jsonb_object_keys(c.record) AS f(field)
LEFT JOIN provenance p ON p.child_id = c.child_id AND p.field = f.field
LEFT JOIN provenance a ON a.child_id = c.child_id AND a.field = '*';
GRANT SELECT ON field_provenance TO hub_operator;
