-- The council that last held a shielded child as an open record: the one her
-- address was in when she was shielded (NULL when she arrived shielded: no council
-- was told of her). Unshielded elsewhere, she is its child.moved_out (hub.notify
-- for_opening): only her authority hears anything while she is shielded, so without
-- it that council kept her on its books at the old address (an independent probe).
-- A trigger, so that every way a record becomes shielded (hub shield, restricted at
-- origin, an operator's placing, hub load) records it alike.
ALTER TABLE children ADD COLUMN IF NOT EXISTS open_la text;

CREATE OR REPLACE FUNCTION children_open_la() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.open_la := CASE WHEN NEW.shielded THEN OLD.record->'address'->>'la' END;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS children_open_la ON children;
CREATE TRIGGER children_open_la BEFORE UPDATE ON children
    FOR EACH ROW WHEN (OLD.shielded IS DISTINCT FROM NEW.shielded)
    EXECUTE FUNCTION children_open_la();
