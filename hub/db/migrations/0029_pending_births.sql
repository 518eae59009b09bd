-- The postcode and date of birth of each update waiting in review (hub.batch
-- BatchState.park). An update that looks like the household's twin of a record
-- (born that day, at that address, under that family name, a given name only like
-- the record's or none) while another child born that day there waits for a person
-- may be hers: it goes to a person too, not into her twin's record (an independent
-- probe: a twin's load waited in review, and her next update, without an NHS
-- number, was written into her sister's record). Deleted as the item is decided
-- (hub.operations.resolve).
CREATE TABLE IF NOT EXISTS pending_births (
    postcode      text NOT NULL,
    date_of_birth text NOT NULL,
    parked_id     uuid NOT NULL,
    PRIMARY KEY (postcode, date_of_birth, parked_id)
);

GRANT SELECT, INSERT ON pending_births TO hub_worker;
GRANT SELECT, INSERT, DELETE ON pending_births TO hub_operator;
