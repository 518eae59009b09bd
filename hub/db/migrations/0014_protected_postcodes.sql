-- Rule 6 protects the postcode of a shielded child's address, not only the address
-- as one source wrote it ("3 Harbour Ln", "Flat A, 3 Harbour Lane" are the same
-- refuge): an update is read with every protected address in its postcode, looked
-- up by this column (the address key's part before '|': hub.records.address_key).
ALTER TABLE protected_addresses
    ADD COLUMN postcode text GENERATED ALWAYS AS (split_part(address_key, '|', 1)) STORED;
CREATE INDEX protected_addresses_postcode ON protected_addresses (postcode);

-- An address with a postcode and no first line was not protected at all: its key is
-- now the postcode and '|' (hub.records.address_key). Every such address a shielded
-- child's history holds is protected, as `hub shield` protects every address.
INSERT INTO protected_addresses (address_key, child_id)
SELECT DISTINCT upper(regexp_replace(v.record->'address'->>'postcode', '\s', '', 'g')) || '|',
       v.child_id
FROM child_versions v JOIN children c USING (child_id)
WHERE c.shielded
  AND jsonb_typeof(v.record->'address') = 'object'
  AND regexp_replace(coalesce(v.record->'address'->>'postcode', ''), '\s', '', 'g') <> ''
  AND lower(coalesce(v.record->'address'->'lines'->>0, '')) !~ '[a-z0-9]'
ON CONFLICT DO NOTHING;
