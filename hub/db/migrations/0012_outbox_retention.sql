-- Retention of sent notifications (`hub outbox purge --older-than-days N`): a sent
-- row's body is a copy of the child's record as a council was sent it, the shielded
-- children's with what their authority may see, and nothing needs it once the broker
-- confirmed it. Unsent rows are never purged (the statement says sent_at IS NOT NULL).
GRANT DELETE ON outbox TO hub_operator;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
