-- A retried item parked again supersedes the one it retried (parked.retry_of). `hub
-- dlq retry` marks the old one retried after the broker confirms the new message;
-- stopped in between (its database session ended), the old one stayed open beside
-- its retry, one failure listed twice (an independent probe). Lists leave out an
-- item that a later one retried, found by this index.
CREATE INDEX IF NOT EXISTS parked_retry_of ON parked (retry_of) WHERE retry_of IS NOT NULL;
