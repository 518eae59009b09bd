-- Least-privilege group roles (NOLOGIN). People and processes log in as their own
-- LOGIN roles that are members of one of these (`hub db-user add NAME --role ...`):
--   hub_worker    `hub run`: the pipeline, outbox relay, dead-letter parking
--   hub_operator  the operators' commands and the console: review, dead letters,
--                 shield / unshield / sever, sources, councils, export, matching models
--   hub_reader    children_readable only (0003: protected fields of shielded records stripped)
--   hub_auditor   audit_log only, read
-- Nobody but the owner (who runs `hub setup`) may change the schema, and nobody at
-- all may UPDATE, DELETE or TRUNCATE audit_log (the trigger of 0001 refuses it even
-- for the owner; the privileges below are never granted).
--
-- Roles are cluster-wide and many databases share a cluster (tests, demo): create
-- each only when missing, and tolerate another session creating it at the same
-- moment (duplicate_object, or unique_violation on pg_authid when both inserted).
-- Where the migrating user may not create roles (a managed PostgreSQL), the roles
-- are created beforehand by the platform (deploy/k8s/postgres-cluster.yaml).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['hub_worker', 'hub_operator', 'hub_reader', 'hub_auditor'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
END $$;

-- Start from nothing: only what is granted below.
REVOKE ALL ON ALL TABLES IN SCHEMA public
    FROM PUBLIC, hub_worker, hub_operator, hub_reader, hub_auditor;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public
    FROM PUBLIC, hub_worker, hub_operator, hub_reader, hub_auditor;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO hub_worker, hub_operator, hub_reader, hub_auditor;

-- hub_worker: exactly what `hub run` reads and writes (queries.sql, workers/).
GRANT SELECT ON processed_messages, sources, source_links, children, block_keys,
                invalidated_identifiers, protected_addresses, not_a_match, provenance,
                outbox, match_models, worker_status
    TO hub_worker;
GRANT INSERT ON children, child_versions, block_keys, source_links, provenance,
                protected_addresses, parked, audit_log, outbox, processed_messages,
                worker_status
    TO hub_worker;
GRANT UPDATE ON children, source_links, provenance, outbox, worker_status TO hub_worker;
GRANT DELETE ON block_keys, worker_status TO hub_worker;
GRANT USAGE ON SEQUENCE audit_log_id_seq, outbox_id_seq TO hub_worker;

-- hub_operator: reads the index and the parked work, makes operators' changes.
-- It reads console_users (the console checks logins) and adds them.
GRANT SELECT ON children, child_versions, block_keys, source_links, provenance,
                invalidated_identifiers, protected_addresses, processed_messages, outbox,
                parked, not_a_match, sources, councils, worker_status, match_models,
                audit_log, console_users, children_readable
    TO hub_operator;
GRANT INSERT ON children, child_versions, block_keys, source_links, provenance,
                invalidated_identifiers, protected_addresses, processed_messages, outbox,
                parked, not_a_match, sources, councils, match_models, audit_log,
                console_users
    TO hub_operator;
GRANT UPDATE ON children, source_links, provenance, parked, sources, match_models
    TO hub_operator;
GRANT DELETE ON block_keys, protected_addresses, councils TO hub_operator;
GRANT USAGE ON SEQUENCE audit_log_id_seq, outbox_id_seq TO hub_operator;

-- hub_reader: the stripped view only (0003 granted it; restated after the REVOKE).
GRANT SELECT ON children_readable TO hub_reader;

-- hub_auditor: the audit trail, nothing else (not the children, not parked payloads).
GRANT SELECT ON audit_log TO hub_auditor;
