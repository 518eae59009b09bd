-- The file format whose adapter rejected a dead letter (csv, fhir, ctf, jsonl); null
-- when its raw content is a canonical update (the pipeline's rejections, and
-- hub publish's own check of what an adapter read). A retry re-drives raw content
-- as a canonical update, so it refuses what an adapter rejected: a CSV row or a
-- FHIR resource came back as invalid_json or unknown_field, its own reason lost.
ALTER TABLE parked ADD COLUMN IF NOT EXISTS format text;
