-- Defence in depth: a read-only role for readers that cannot select the
-- protected fields of shielded records, even with hand-written SQL. It reads
-- through a view that strips them; the tables themselves are closed to it.
DO $$
BEGIN
    CREATE ROLE hub_reader NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE VIEW children_readable WITH (security_barrier) AS
SELECT child_id, version, shielded, shielding_authority,
       CASE WHEN shielded
            THEN record - ARRAY['address', 'carers', 'education_setting', 'gp_practice',
                                'services']
            ELSE record END AS record,
       created_at, updated_at
FROM children;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM hub_reader;
GRANT USAGE ON SCHEMA public TO hub_reader;
GRANT SELECT ON children_readable TO hub_reader;
