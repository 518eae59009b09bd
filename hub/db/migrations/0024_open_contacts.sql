-- The phone numbers and email addresses of each record (hub.places.contact_keys),
-- written with the record. Rule 6 counts how many open records hold a shielded
-- child's contact (partial index: open records only): one that many hold is a
-- shared line (a health visiting team's), not a secret of hers (hub.places,
-- PUBLIC_CONTACT). Records written before this migration hold none until they are
-- next written: such a number counts as hers, as before.
ALTER TABLE children ADD COLUMN IF NOT EXISTS contacts text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS children_open_contacts ON children USING gin (contacts)
    WHERE NOT shielded;
