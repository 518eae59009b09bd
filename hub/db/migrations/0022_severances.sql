-- Which authority severed a record's former identity (`hub sever`): an operator's
-- decision that would join the two identities again (linking an update into the
-- severed record, creating a record beside it for an update that could be its
-- former identity) is that authority's alone. Records severed before this
-- migration take the authority from the audit trail.
CREATE TABLE IF NOT EXISTS severances (
    child_id    uuid PRIMARY KEY REFERENCES children,
    authority   text NOT NULL,
    severed_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO severances (child_id, authority, severed_at)
SELECT DISTINCT ON (a.child_id) a.child_id, a.subject, a.at
FROM audit_log a JOIN children c ON c.child_id = a.child_id
WHERE a.action = 'sever' AND c.severed AND a.subject IS NOT NULL
ORDER BY a.child_id, a.id DESC
ON CONFLICT DO NOTHING;

GRANT SELECT, INSERT, UPDATE ON severances TO hub_operator;
