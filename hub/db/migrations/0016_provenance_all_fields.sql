-- A record as its source created it has one provenance row naming every field
-- ('*') instead of a row a field (hub.batch.ALL_FIELDS): a bulk load of a million
-- records wrote eleven million rows of it. A field's source is its own row's, or
-- where it has none, the '*' row's. Rows written before this stay as they are.
COMMENT ON COLUMN provenance.field IS
    'a field of the record, or * for every field not named in a row of its own '
    '(the record as its source created it)';
