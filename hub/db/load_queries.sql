-- Named queries of `hub load` (hub/bulk). Each block starts with "-- name: NAME".

-- name: load_index_size
SELECT count(*) FROM (SELECT 1 FROM children LIMIT 1) c;

-- name: load_analyze
ANALYZE children, block_keys, source_links;

-- name: load_versions
SELECT child_id::text AS child_id, version FROM children
WHERE child_id = ANY($1::uuid[]) FOR UPDATE;

-- name: load_parked_dead
SELECT message_id FROM parked WHERE kind = 'dead' AND message_id = ANY($1::text[]);

-- name: load_staging
CREATE TEMP TABLE IF NOT EXISTS load_children (
    child_id uuid, version integer, record jsonb, shielded boolean,
    shielding_authority text, restricted_at_origin boolean, severed boolean, prepared text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_links (
    source text, source_record_id text, child_id uuid, last_version bigint, linked_by text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_provenance (
    child_id uuid, field text, source text, source_record_id text, source_version bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_protected (
    address_key text, child_id uuid
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_parked (
    id uuid, kind text, reason text, source text, source_record_id text,
    source_version bigint, error text, raw text, routing_key text, message_id text,
    update jsonb, candidates jsonb, retry_of uuid
) ON COMMIT DELETE ROWS;

-- name: load_update_children
UPDATE children c SET
    version = s.version, record = s.record, shielded = s.shielded,
    shielding_authority = s.shielding_authority,
    shielded_at = COALESCE(c.shielded_at, CASE WHEN s.shielded THEN now() END),
    restricted_at_origin = s.restricted_at_origin, severed = s.severed, updated_at = now(),
    prepared = s.prepared
FROM load_children s WHERE c.child_id = s.child_id;

-- name: load_delete_keys
DELETE FROM block_keys WHERE child_id = ANY($1::uuid[]);

-- name: load_upsert_links
INSERT INTO source_links (source, source_record_id, child_id, last_version, linked_by)
SELECT source, source_record_id, child_id, last_version, linked_by FROM load_links
ON CONFLICT (source, source_record_id) DO UPDATE SET
    child_id = EXCLUDED.child_id,
    last_version = GREATEST(source_links.last_version, EXCLUDED.last_version),
    linked_by = CASE WHEN source_links.child_id = EXCLUDED.child_id
                     THEN source_links.linked_by ELSE EXCLUDED.linked_by END,
    severed = CASE WHEN source_links.child_id = EXCLUDED.child_id
                   THEN source_links.severed ELSE false END;

-- name: load_upsert_provenance
INSERT INTO provenance (child_id, field, source, source_record_id, source_version)
SELECT child_id, field, source, source_record_id, source_version FROM load_provenance
ON CONFLICT (child_id, field) DO UPDATE SET
    source = EXCLUDED.source, source_record_id = EXCLUDED.source_record_id,
    source_version = EXCLUDED.source_version, recorded_at = now();

-- name: load_insert_protected
INSERT INTO protected_addresses (address_key, child_id)
SELECT address_key, child_id FROM load_protected
ON CONFLICT DO NOTHING;

-- name: load_insert_parked
INSERT INTO parked (id, kind, reason, source, source_record_id, source_version, error,
                    raw, routing_key, message_id, update, candidates, retry_of)
SELECT id, kind, reason, source, source_record_id, source_version, error,
       raw, routing_key, message_id, update, candidates, retry_of FROM load_parked
ON CONFLICT DO NOTHING;
