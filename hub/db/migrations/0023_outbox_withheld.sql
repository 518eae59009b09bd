-- A notification written before its child was shielded, to a council other than
-- the shielding authority, and not yet sent when the shield took effect (the relay
-- behind: a broker outage, a backlog) is withheld by the relay instead of sent: it
-- may carry her new address (found by an independent probe). Marked, not deleted,
-- so that what was withheld can be counted and investigated.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS withheld boolean NOT NULL DEFAULT false;
