-- Named queries. Each block starts with "-- name: NAME".

-- name: processed_ids
SELECT message_id, body_digest FROM processed_messages WHERE message_id = ANY($1::text[]);

-- name: paused_sources
SELECT name FROM sources WHERE paused;

-- name: links_for
SELECT l.source, l.source_record_id, l.child_id::text AS child_id, l.last_version, l.severed
FROM source_links l
JOIN unnest($1::text[], $2::text[]) AS u(source, rid)
  ON l.source = u.source AND l.source_record_id = u.rid;

-- name: identities_for
-- What bears on a batch by identity rather than by blocking key, in one round trip:
-- its source links ('l': source, record id, last version, severed), invalidated NHS
-- numbers ('i': the number), the protected places of shielded children in its
-- postcodes or under its carers' phone numbers ($4; 'p': address or phone key),
-- operators' "not a match" ('x': source, record id), its source records' versions
-- waiting in review ('w': source, record id, highest version), the children under
-- its NHS numbers ('k': the n: key; $5) and children asked for by id ('e'; $6). NHS
-- numbers ($3, $5) come joined by chr(31) (they are digits). Each row comes with its
-- child (for 'x' its id only; 'w' has none), record included: the batch will likely
-- write it (its source link, its NHS number), or the rules read it.
WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[]) AS u(source, rid)
), facts AS (
    SELECT 'l' AS kind, l.source AS a, l.source_record_id AS b, l.last_version AS n,
           l.severed AS flag, l.child_id
    FROM source_links l JOIN u ON l.source = u.source AND l.source_record_id = u.rid
    UNION ALL
    SELECT 'i', i.nhs_number, NULL, NULL, NULL, i.child_id
    FROM invalidated_identifiers i WHERE i.nhs_number = ANY(string_to_array($3::text, chr(31)))
    UNION ALL
    SELECT 'p', p.address_key, NULL, NULL, NULL, p.child_id
    FROM protected_addresses p WHERE p.postcode = ANY($4::text[])
    UNION ALL
    -- a parked update's places while it waits in review (migration 0020): its id is
    -- no child's, so it is a holder taken to be shielded, its address not known;
    -- its authority, where known, in place of b; flag: a parked update's
    SELECT 'p', w.address_key, w.authority, NULL, true, w.parked_id
    FROM pending_places w WHERE w.postcode = ANY($4::text[])
    UNION ALL
    -- the births of updates waiting in review at its postcodes (migration 0029)
    SELECT 'b', w.postcode, w.date_of_birth, NULL, NULL, NULL
    FROM pending_births w WHERE w.postcode = ANY($4::text[])
    UNION ALL
    -- the highest version of each of its source records waiting in review
    SELECT 'w', w.source, w.source_record_id, max(w.source_version), NULL, NULL
    FROM parked w JOIN u ON w.source = u.source AND w.source_record_id = u.rid
    WHERE w.kind = 'review' AND w.status = 'open'
    GROUP BY w.source, w.source_record_id
    UNION ALL
    SELECT 'x', n.source, n.source_record_id, NULL, NULL, n.child_id
    FROM not_a_match n JOIN u ON n.source = u.source AND n.source_record_id = u.rid
    -- Said before she was shielded, it is void while she is: she stays a candidate,
    -- and an update plausibly hers goes to a person, not to a create (rule 9).
    WHERE NOT EXISTS (SELECT 1 FROM children c WHERE c.child_id = n.child_id
                      AND c.shielded AND n.decided_at < c.shielded_at)
    UNION ALL
    SELECT 'k', b.key, NULL, NULL, NULL, b.child_id
    FROM block_keys b WHERE b.key = ANY(string_to_array($5::text, chr(31)))
    UNION ALL
    SELECT 'e', NULL, NULL, NULL, NULL, e FROM unnest($6::uuid[]) AS e
)
SELECT f.kind, f.a, f.b, f.n, f.flag, f.child_id::text AS child_id, c.version,
       c.record::text AS record_json, c.prepared, c.shielded, c.shielding_authority,
       c.restricted_at_origin, c.severed
FROM facts f LEFT JOIN children c ON c.child_id = f.child_id AND f.kind <> 'x';

-- name: children_for_keys
-- Candidates in one round trip: by blocking key ($1), or by the PROTECTED copy of a
-- key ($2, given without its prefix: hub.match.blocking, only shielded and severed
-- children carry those, served by the small partial index block_keys_protected);
-- with the keys each was found by. The keys come joined by chr(31) (hub.db.store.packed:
-- a driver encodes an array of thousands of strings a string at a time), any key
-- holding that character in $5 (of $1) or $6 (of $2).
WITH wanted AS MATERIALIZED (
    -- Made at run time, not while planning: a plan made with the constant arrays
    -- estimated each of thousands of keys (3 ms of planning a batch).
    SELECT string_to_array($1::text, chr(31)) || $5::text[] AS plain,
           ARRAY(SELECT '!' || k
                 FROM unnest(string_to_array($2::text, chr(31)) || $6::text[]) AS k) AS copies
), plain_hits AS MATERIALIZED (
    SELECT key, child_id FROM block_keys
    WHERE key = ANY((SELECT plain FROM wanted)::text[]) AND NOT starts_with(key, '!')
), crowded AS (
    -- A postcode holding more than $7 children (hub.match.blocking.CROWDED_POSTCODE)
    -- is no street's worth of households: its key finds no one (the PROTECTED
    -- copies below are kept).
    SELECT key FROM plain_hits WHERE starts_with(key, 'p:')
    GROUP BY key HAVING count(*) > $7::int
), hits AS (
    SELECT key, child_id FROM plain_hits WHERE key NOT IN (SELECT key FROM crowded)
    UNION ALL
    SELECT key, child_id FROM block_keys
    WHERE key = ANY((SELECT copies FROM wanted)::text[]) AND starts_with(key, '!')
), found AS (
    SELECT child_id, array_agg(key) AS keys FROM hits GROUP BY child_id
)
-- `prepared` is what scoring reads (hub.match.compact). The record comes as JSON
-- text, decoded only if it is used; with $3 (the pipeline) only where the rules may
-- read it whatever they decide: shielded and severed children, and those whose
-- stored form ($4: hub.match.compact.TAG and separator) is missing or stale.
-- identities_for reads, with their records, the children by id and under the
-- batch's NHS numbers, which it will likely write; records_for the others it writes.
SELECT c.child_id::text AS child_id, c.version,
       CASE WHEN NOT $3::bool OR c.shielded OR c.severed
                 OR NOT starts_with(coalesce(c.prepared, ''), $4::text || c.version || chr(31))
            THEN c.record::text END AS record_json,
       c.prepared,
       c.shielded, c.shielding_authority, c.restricted_at_origin, c.severed,
       found.keys
FROM found JOIN children c USING (child_id);

-- name: keys_under
-- The children under blocking keys, with the key and their version, the keys joined
-- by chr(31) as in children_for_keys ($2: any key holding that character):
-- hub.db.store.guard_new_keys.
-- A crowded postcode's key ($3: as children_for_keys) finds no one here either.
WITH hits AS MATERIALIZED (
    SELECT key, child_id FROM block_keys
    WHERE key = ANY(string_to_array($1::text, chr(31)) || $2::text[])
), crowded AS (
    SELECT key FROM hits WHERE starts_with(key, 'p:') GROUP BY key HAVING count(*) > $3::int
)
SELECT h.key, h.child_id::text, c.version FROM hits h JOIN children c USING (child_id)
WHERE h.key NOT IN (SELECT key FROM crowded);

-- name: records_for
-- The records of children read without theirs (children_for_keys with $3), by id,
-- with all children_for_keys read of them: another transaction may have changed one.
SELECT child_id::text AS child_id, version, record::text AS record_json, prepared,
       shielded, shielding_authority, restricted_at_origin, severed
FROM children WHERE child_id = ANY($1::uuid[]);

-- name: invalidated_for
SELECT nhs_number, child_id::text AS child_id
FROM invalidated_identifiers WHERE nhs_number = ANY($1::text[]);

-- name: shielded_holders
-- The shielded children holding any of these protected places (looked up as
-- hub.places.lookup_places gives them, and phone keys), each with the place, its
-- shielding authority and its current address (hub.operations.shielded_holders).
SELECT p.child_id::text AS child_id, p.address_key, c.shielding_authority,
       c.record->'address' AS address
FROM protected_addresses p JOIN children c USING (child_id)
WHERE p.postcode = ANY($1::text[]) AND c.shielded
UNION ALL  -- an update that may be a hidden child's, waiting in review (migration 0020)
SELECT w.parked_id::text, w.address_key, w.authority, k.update->'child'->'address'
FROM pending_places w JOIN parked k ON k.id = w.parked_id
WHERE w.postcode = ANY($1::text[])
ORDER BY 1, 2;

-- name: open_under_key
-- The open (unshielded) children indexed under one blocking key (a postcode's "p:"
-- key: everyone at the postcode), with their records.
SELECT c.child_id::text AS child_id, c.record
FROM block_keys k JOIN children c ON c.child_id = k.child_id
WHERE k.key = $1 AND NOT c.shielded
ORDER BY c.child_id;

-- name: open_under_keys
-- The open (unshielded) children other than $2 indexed under any of these blocking
-- keys, with their records (hub.shield_check.could_be_her).
SELECT c.child_id::text AS child_id, c.record
FROM children c
WHERE c.child_id IN (SELECT child_id FROM block_keys WHERE key = ANY($1::text[]))
  AND NOT c.shielded AND c.child_id <> $2
ORDER BY c.child_id;

-- name: history_places
-- What every version of these children held that rule 6 protects (hub.places).
SELECT child_id, jsonb_build_object('address', record->'address',
                                    'carers', record->'carers',
                                    'services', record->'services') AS record
FROM child_versions WHERE child_id = ANY($1::uuid[]);

-- name: protect_places
-- Protect places ($1) of children ($2); how many were not protected yet.
WITH added AS (
    INSERT INTO protected_addresses (address_key, child_id)
    SELECT * FROM unnest($1::text[], $2::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM added;

-- name: protected_for
-- The protected places in postcodes, or under phone keys (a phone key's postcode
-- column is the key itself).
SELECT address_key, child_id::text AS child_id, NULL AS authority, false AS pending
FROM protected_addresses WHERE postcode = ANY($1::text[])
UNION ALL  -- as in identities_for
SELECT address_key, parked_id::text, authority, true
FROM pending_places WHERE postcode = ANY($1::text[]);

-- name: not_a_match_for
-- As in identities_for: void for a child shielded since it was said.
SELECT n.source, n.source_record_id, n.child_id::text AS child_id
FROM not_a_match n
JOIN unnest($1::text[], $2::text[]) AS u(source, rid)
  ON n.source = u.source AND n.source_record_id = u.rid
WHERE NOT EXISTS (SELECT 1 FROM children c WHERE c.child_id = n.child_id
                  AND c.shielded AND n.decided_at < c.shielded_at);

-- name: insert_version
INSERT INTO child_versions (child_id, version, record, changed_by, message_id)
VALUES ($1, $2, $3, $4, $5);

-- name: replace_keys
-- The children $3 end up indexed under exactly the (key, child) pairs $1/$2. Only
-- what changed is deleted or inserted: most updates change none of a child's
-- keys, or one (a move), and rewriting all of them cost each update a dozen
-- deletions and a dozen insertions into two indexes with a foreign key check.
WITH wanted AS (
    SELECT k, c FROM unnest($1::text[], $2::uuid[]) AS u(k, c)
), gone AS (
    DELETE FROM block_keys b
    WHERE b.child_id = ANY($3::uuid[])
      AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.k = b.key AND w.c = b.child_id)
)
INSERT INTO block_keys (key, child_id)
SELECT k, c FROM wanted ON CONFLICT DO NOTHING;

-- name: insert_parked
-- A retried record parked again keeps the operators' assignment and notes ($13).
INSERT INTO parked (id, kind, reason, source, source_record_id, source_version, error,
                    raw, routing_key, message_id, update, candidates, retry_of, body_digest,
                    format, assigned_to, notes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
        (SELECT p.assigned_to FROM parked p WHERE p.id = $13),
        coalesce((SELECT p.notes FROM parked p WHERE p.id = $13), '[]'::jsonb))
ON CONFLICT DO NOTHING;

-- name: insert_audit
INSERT INTO audit_log (actor, action, child_id, subject, detail)
VALUES ($1, $2, $3, $4, $5);

-- name: insert_outbox
INSERT INTO outbox (event_id, routing_key, body) VALUES ($1, $2, $3)
ON CONFLICT (event_id) DO NOTHING;

-- name: insert_outbox_text
-- The body as JSON text (hub.shield_check: also on a connection without a jsonb codec).
INSERT INTO outbox (event_id, routing_key, body) VALUES ($1, $2, $3::text::jsonb)
ON CONFLICT (event_id) DO NOTHING;

-- name: outbox_batch
-- The body as the text it is published as (not decoded into Python and encoded again).
-- `withheld`: its child is shielded now and it goes to another council than the
-- shielding authority (written before the shield; migration 0023).
SELECT o.id, o.event_id::text AS event_id, o.routing_key, o.body::text AS body,
       o.body->>'child_id' AS child_id,
       coalesce(c.shielded AND NOT starts_with(
           o.routing_key, 'la.' || coalesce(c.shielding_authority, '') || '.'), false)
           AS withheld
FROM outbox o LEFT JOIN children c ON c.child_id = CASE
    WHEN o.body->>'child_id' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN (o.body->>'child_id')::uuid END
WHERE o.sent_at IS NULL ORDER BY o.id LIMIT $1
FOR UPDATE OF o SKIP LOCKED;

-- name: review_purge_decided
UPDATE parked SET raw = NULL, update = NULL
WHERE kind = 'review' AND status IN ('resolved', 'rejected')
  AND (raw IS NOT NULL OR update IS NOT NULL)
  AND resolved_at < now() - make_interval(secs => $1 * 86400)
RETURNING id;

-- name: outbox_purge_sent
WITH gone AS (
    DELETE FROM outbox
    WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1 * 86400)
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: processed_purge
-- Message ids processed more than $1 days ago (hub.operations.purge_processed).
WITH gone AS (
    DELETE FROM processed_messages
    WHERE processed_at < now() - make_interval(secs => $1 * 86400)
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: outbox_mark_sent
UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]);

-- name: outbox_mark_withheld
UPDATE outbox SET sent_at = now(), withheld = true WHERE id = ANY($1::bigint[]);

-- name: outbox_pending
SELECT count(*) FROM outbox WHERE sent_at IS NULL;

-- name: count_stale_prepared
-- Children whose stored normal form is missing, of another normalisation ($1, the
-- tag of hub.match.compact) or of another version of the record.
SELECT count(*) FROM children
WHERE prepared IS NULL OR split_part(prepared, E'\x1f', 1) <> $1
   OR split_part(prepared, E'\x1f', 2) <> version::text;

-- name: count_stale_shielded
-- Shielded children whose stored form (and so blocking keys) another normalisation
-- made ($1, the tag of hub.match.compact): `hub setup` has not renewed them yet.
SELECT count(*) FROM children
WHERE shielded AND prepared IS NOT NULL AND split_part(prepared, E'\x1f', 1) <> $1;

-- name: stale_prepared
SELECT child_id, version, record::text AS record_json, shielded, severed FROM children
WHERE child_id > $2::uuid
  AND (prepared IS NULL OR split_part(prepared, E'\x1f', 1) <> $1
       OR split_part(prepared, E'\x1f', 2) <> version::text)
ORDER BY child_id LIMIT $3;

-- name: open_contact_holders
-- How many open records hold each of these contacts ($1), counted up to $2 each
-- (migration 0026: through the partial GIN index, never a scan of children).
SELECT contact, holders FROM open_contact_holders($1::text[], $2::int);

-- name: set_prepared
UPDATE children c SET prepared = f.prepared
FROM unnest($1::uuid[], $2::integer[], $3::text[]) AS f(child_id, version, prepared)
WHERE c.child_id = f.child_id AND c.version = f.version
RETURNING c.child_id;

-- Flushing a batch (hub/db/writes.py): one statement per table, rows as arrays.
-- Each array holds a row per element, in the order the batch made them; WITH
-- ORDINALITY keeps that order where ids are assigned (audit, outbox). JSON goes
-- as text and is cast here: a JSON list in a jsonb[] would read as a dimension.

-- name: flush_children
-- contacts: each record's (hub.places.contact_keys) joined by chr(31).
INSERT INTO children (child_id, version, record, shielded, shielding_authority,
                      shielded_at, restricted_at_origin, severed, prepared, contacts)
SELECT u.child_id, u.version, u.record::jsonb, u.shielded, u.authority,
       CASE WHEN u.shielded THEN now() END, u.restricted, u.severed, u.prepared,
       string_to_array(u.contacts, chr(31))
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::boolean[], $5::text[],
            $6::boolean[], $7::boolean[], $8::text[], $9::text[])
     AS u(child_id, version, record, shielded, authority, restricted, severed, prepared,
          contacts)
ON CONFLICT (child_id) DO UPDATE SET
    version = EXCLUDED.version, record = EXCLUDED.record, prepared = EXCLUDED.prepared,
    contacts = EXCLUDED.contacts,
    shielded = EXCLUDED.shielded, shielding_authority = EXCLUDED.shielding_authority,
    shielded_at = COALESCE(children.shielded_at, EXCLUDED.shielded_at),
    restricted_at_origin = EXCLUDED.restricted_at_origin,
    severed = EXCLUDED.severed, updated_at = now();

-- name: flush_versions
INSERT INTO child_versions (child_id, version, record, changed_by, message_id)
SELECT child_id, version, record::jsonb, changed_by, message_id
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::text[])
     AS u(child_id, version, record, changed_by, message_id);

-- name: flush_links
INSERT INTO source_links (source, source_record_id, child_id, last_version, linked_by)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bigint[], $5::text[])
ON CONFLICT (source, source_record_id) DO UPDATE SET
    child_id = EXCLUDED.child_id,
    last_version = GREATEST(source_links.last_version, EXCLUDED.last_version),
    linked_by = CASE WHEN source_links.child_id = EXCLUDED.child_id
                     THEN source_links.linked_by ELSE EXCLUDED.linked_by END,
    severed = CASE WHEN source_links.child_id = EXCLUDED.child_id
                   THEN source_links.severed ELSE false END;

-- name: flush_provenance
INSERT INTO provenance (child_id, field, source, source_record_id, source_version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[])
ON CONFLICT (child_id, field) DO UPDATE SET
    source = EXCLUDED.source, source_record_id = EXCLUDED.source_record_id,
    source_version = EXCLUDED.source_version, recorded_at = now();

-- name: flush_pending_births
INSERT INTO pending_births (postcode, date_of_birth, parked_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT DO NOTHING;

-- name: flush_pending_places
INSERT INTO pending_places (address_key, parked_id, authority)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[])
ON CONFLICT DO NOTHING;

-- name: flush_protected
INSERT INTO protected_addresses (address_key, child_id)
SELECT * FROM unnest($1::text[], $2::uuid[])
ON CONFLICT DO NOTHING;

-- name: flush_parked
-- A retried record parked again keeps the operators' assignment and notes.
INSERT INTO parked (id, kind, reason, source, source_record_id, source_version, error,
                    raw, routing_key, message_id, update, candidates, retry_of, body_digest,
                    assigned_to, notes)
SELECT u.id, u.kind, u.reason, u.source, u.source_record_id, u.source_version, u.error,
       u.raw, u.routing_key, u.message_id, u.update::jsonb, u.candidates::jsonb, u.retry_of,
       u.body_digest, p.assigned_to, coalesce(p.notes, '[]'::jsonb)
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[],
            $11::text[], $12::text[], $13::uuid[], $14::bytea[])
     AS u(id, kind, reason, source, source_record_id, source_version, error, raw,
          routing_key, message_id, update, candidates, retry_of, body_digest)
     LEFT JOIN parked p ON p.id = u.retry_of
ON CONFLICT DO NOTHING;

-- name: flush_audit
INSERT INTO audit_log (actor, action, child_id, subject, detail)
SELECT actor, action, child_id, subject, detail::jsonb
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[])
     WITH ORDINALITY AS u(actor, action, child_id, subject, detail, n)
ORDER BY n;

-- name: flush_outbox
-- The relay (LISTEN hub_outbox) wakes at commit instead of at its next poll.
WITH rows AS (
    INSERT INTO outbox (event_id, routing_key, body)
    SELECT event_id, routing_key, body::jsonb
    FROM unnest($1::uuid[], $2::text[], $3::text[])
         WITH ORDINALITY AS u(event_id, routing_key, body, n)
    ORDER BY n
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
)
SELECT pg_notify('hub_outbox', count(*)::text) FROM rows;

-- name: flush_processed
-- With the batch's counts by source and decision (metrics, migration 0011), of the
-- messages new here only.
WITH done AS (
    INSERT INTO processed_messages (message_id, outcome, child_id, latency_ms, body_digest,
                                    source)
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::integer[], $5::bytea[],
                         $6::text[])
    ON CONFLICT DO NOTHING
    RETURNING source, outcome
)
INSERT INTO update_counts (source, decision, n)
SELECT coalesce(source, 'unknown'), split_part(outcome, ':', 1), count(*)
FROM done GROUP BY 1, 2;

-- name: add_update_counts
INSERT INTO update_counts (source, decision, n)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]);

-- name: update_counts
SELECT source, decision, sum(n)::bigint AS n, count(*) AS rows
FROM update_counts GROUP BY source, decision;

-- name: latency_last_hour
-- The processing latency histogram (metrics): one read of the last hour's messages,
-- counted at each bucket bound ($1, milliseconds).
WITH recent AS MATERIALIZED (
    SELECT latency_ms FROM processed_messages
    WHERE processed_at > now() - interval '1 hour' AND latency_ms IS NOT NULL
)
SELECT (SELECT count(*) FROM recent) AS n,
       (SELECT coalesce(sum(latency_ms), 0) FROM recent) AS total,
       array(SELECT (SELECT count(*) FROM recent WHERE latency_ms <= b)
             FROM unnest($1::int[]) WITH ORDINALITY AS u(b, i) ORDER BY i) AS buckets;

-- name: fold_update_counts
-- One row per source and decision. Rows that other transactions append meanwhile
-- are not seen, so not deleted: they are counted at the next fold.
WITH gone AS (DELETE FROM update_counts RETURNING source, decision, n)
INSERT INTO update_counts (source, decision, n)
SELECT source, decision, sum(n) FROM gone GROUP BY source, decision;
