-- The places of an update restricted at origin (a PDS record marked R or V), or one
-- that may be a shielded child's (a shielded candidate), while it waits in review: a
-- child may be hidden there, though no record there is shielded yet.
-- Rule 6 counts them as it counts a shielded child's (hub.batch.BatchState.park):
-- an update from another source that would write the refuge into an open record, or
-- create one there, goes to a person instead (before, the school's update about her
-- at the refuge was created open while her restricted record waited). Deleted as the
-- item is decided (hub.operations.resolve): by then the record it placed, shielded
-- on arrival, protects them.
CREATE TABLE IF NOT EXISTS pending_places (
    address_key text NOT NULL,
    parked_id   uuid NOT NULL,
    -- the authority whose shield it would carry: the council of the area a
    -- restricted update arrives in; the shielding authority of its shielded
    -- candidates, when they have one between them; null when not known
    authority   text,
    postcode    text GENERATED ALWAYS AS (split_part(address_key, '|', 1)) STORED,
    PRIMARY KEY (address_key, parked_id)
);
CREATE INDEX IF NOT EXISTS pending_places_postcode ON pending_places (postcode);

GRANT SELECT, INSERT ON pending_places TO hub_worker;
GRANT SELECT, INSERT, DELETE ON pending_places TO hub_operator;
