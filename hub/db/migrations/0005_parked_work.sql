-- Operators' handling of parked work: who has it, what they noted, whether it is
-- under investigation.
ALTER TABLE parked
    ADD COLUMN assigned_to   text,
    ADD COLUMN investigating boolean NOT NULL DEFAULT false,
    ADD COLUMN notes         jsonb NOT NULL DEFAULT '[]';
