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

-- name: load_delete_keys
DELETE FROM block_keys WHERE child_id = ANY($1::uuid[]);

