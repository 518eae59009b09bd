-- The child index and everything that must change with it in one transaction.

CREATE TABLE children (
    child_id            uuid PRIMARY KEY,
    version             integer NOT NULL,
    record              jsonb NOT NULL,          -- the canonical child, protected fields included
    shielded            boolean NOT NULL DEFAULT false,
    shielding_authority text,
    shielded_at         timestamptz,
    restricted_at_origin boolean NOT NULL DEFAULT false,
    severed             boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Every version of every record: history, and the earlier protected values that
-- shielding must keep hidden too.
CREATE TABLE child_versions (
    child_id    uuid NOT NULL REFERENCES children,
    version     integer NOT NULL,
    record      jsonb NOT NULL,
    changed_by  text NOT NULL,                   -- source name or operator
    message_id  text,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (child_id, version)
);

-- Blocking keys (hub.match.blocking.index_keys): candidate retrieval for a whole
-- batch is one indexed query.
CREATE TABLE block_keys (
    key      text NOT NULL,
    child_id uuid NOT NULL REFERENCES children,
    PRIMARY KEY (key, child_id)
);
CREATE INDEX block_keys_child ON block_keys (child_id);

-- The same source record always finds its child again.
CREATE TABLE source_links (
    source           text NOT NULL,
    source_record_id text NOT NULL,
    child_id         uuid NOT NULL REFERENCES children,
    last_version     bigint NOT NULL,            -- an older or equal version is a no-op
    severed          boolean NOT NULL DEFAULT false,
    linked_by        text NOT NULL,              -- 'auto' or the operator
    linked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_record_id)
);
CREATE INDEX source_links_child ON source_links (child_id);

-- Which source said what, when: one row per child and top-level field.
CREATE TABLE provenance (
    child_id         uuid NOT NULL REFERENCES children,
    field            text NOT NULL,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    source_version   bigint NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (child_id, field)
);

-- Identifiers that must never link automatically again (adoption: the old NHS
-- number is invalidated).
CREATE TABLE invalidated_identifiers (
    nhs_number  text PRIMARY KEY,
    child_id    uuid NOT NULL REFERENCES children,
    severed_at  timestamptz NOT NULL DEFAULT now()
);

-- Addresses ever held by a shielded record (normalised key only): nothing may
-- write one of them into an unshielded record without a person deciding.
CREATE TABLE protected_addresses (
    address_key text NOT NULL,
    child_id    uuid NOT NULL REFERENCES children,
    PRIMARY KEY (address_key, child_id)
);

-- Idempotency: a redelivered message is a no-op.
CREATE TABLE processed_messages (
    message_id   text PRIMARY KEY,
    outcome      text NOT NULL,
    child_id     uuid,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit log (a trigger refuses UPDATE and DELETE).
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    child_id  uuid,
    subject   text,
    detail    jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Transactional outbox: the only way out.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    routing_key text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Parked work: review items and dead letters, waiting for an operator.
CREATE TABLE parked (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('review', 'dead')),
    reason           text NOT NULL,
    source           text,
    source_record_id text,
    source_version   bigint,
    error            text,
    raw              text,                       -- the message body as received
    routing_key      text,
    message_id       text,
    update           jsonb,                      -- the canonical update, when it was one
    candidates       jsonb NOT NULL DEFAULT '[]',
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'resolved', 'rejected', 'retried', 'purged')),
    attempts         integer NOT NULL DEFAULT 1,
    retry_of         uuid,
    received_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    resolved_by      text,
    resolution       text,
    note             text
);
CREATE INDEX parked_open ON parked (kind, reason) WHERE status = 'open';
CREATE UNIQUE INDEX parked_message ON parked (kind, message_id) WHERE message_id IS NOT NULL;

-- Pairs an operator said are not the same child: never offered again.
CREATE TABLE not_a_match (
    source           text NOT NULL,
    source_record_id text NOT NULL,
    child_id         uuid NOT NULL,
    decided_by       text NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_record_id, child_id)
);

CREATE TABLE sources (
    name       text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    held       boolean NOT NULL DEFAULT false,   -- has a held queue in the broker
    changed_by text,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE councils (
    la         text PRIMARY KEY,
    added_at   timestamptz NOT NULL DEFAULT now()
);

-- Each running worker's in-flight count, so `hub wait` can tell that nothing
-- delivered is still unacknowledged.
CREATE TABLE worker_status (
    worker_id  text PRIMARY KEY,
    inflight   integer NOT NULL,
    heartbeat  timestamptz NOT NULL DEFAULT now()
);
