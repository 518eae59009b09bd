-- The digest of what was processed under each message id (hub.ingest.digest_of): a
-- message arriving under an id already processed is a redelivery when its digest
-- agrees, and another message reusing the id (dead-lettered, not dropped) when it
-- does not. Rows from before have none and count as redeliveries, as they did.
ALTER TABLE processed_messages ADD COLUMN body_digest bytea;

-- A dead letter for a message that reused an id carries that message's digest, so
-- that several such messages under one id are each kept (one parked item per kind
-- and message id stays the rule for everything else: a message parked twice, by the
-- pipeline and by the dead-letter consumer, is one item).
ALTER TABLE parked ADD COLUMN body_digest bytea;
DROP INDEX parked_message;
CREATE UNIQUE INDEX parked_message ON parked (kind, message_id, coalesce(body_digest, ''::bytea))
    WHERE message_id IS NOT NULL;
