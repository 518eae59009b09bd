-- Each record's normal forms for scoring (hub.match.compact), written with the
-- record, so that candidate retrieval need not decode and normalise every record.
-- NULL or stale (another normalisation's tag): the reader prepares the record itself.
ALTER TABLE children ADD COLUMN prepared text;
