-- Publish-to-commit latency of each processed message (from the AMQP timestamp the
-- publisher set), for the processing latency histogram.
ALTER TABLE processed_messages ADD COLUMN latency_ms integer;
CREATE INDEX processed_messages_at ON processed_messages (processed_at);
