-- A dead letter retried and parked again keeps its operators' assignment and notes
-- (queries.sql insert_parked, flush_parked): the worker reads them off the item it
-- retries (0021 granted it the other columns it reads).
GRANT SELECT (id, assigned_to, notes) ON parked TO hub_worker;
