-- How many open records hold each contact, counted up to `cap` a contact: rule 6
-- asks only whether a shielded child's contact is a shared line (PUBLIC_CONTACT
-- holders or more, hub.places), and counting every holder of a national number
-- that a million records carry took half a second a batch. Each count goes through
-- the partial GIN index (children_open_contacts): seq scans are off inside, as with
-- a limit the planner would read all of children for a contact no one holds.
CREATE OR REPLACE FUNCTION open_contact_holders(contacts text[], cap integer)
RETURNS TABLE (contact text, holders bigint)
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT k, (SELECT count(*) FROM (SELECT 1 FROM children c
                                     WHERE c.contacts @> ARRAY[k] AND NOT c.shielded
                                     LIMIT cap) AS held)
    FROM unnest(contacts) AS k
$$;
