-- block_keys is derived from children.record (hub.match.blocking), as a search index
-- is: each child's keys are written in the transaction that writes the child, after
-- it (hub.db.writes, hub.bulk.write), and no child is ever deleted (a change that
-- deletes children must delete their keys first). Its foreign key checked every key
-- row against children's primary key: inserting 1,000,000 key rows took PostgreSQL
-- 8.7 s with the check and 4.6 s without, and a new record has about eleven; in a
-- bulk load that was the larger part of PostgreSQL's work. The suite checks that no
-- key is left without its child (tests/integration/test_bulk_load.py).
ALTER TABLE block_keys DROP CONSTRAINT IF EXISTS block_keys_child_id_fkey;
