-- Operators of the web console (hub.console): one row per person, with a role.
-- operator: works the queues; authority: management of one local authority (its
-- 3-digit LA code), the only one who sees its shielded children's protected fields;
-- auditor: reads everything the console shows, changes nothing.
CREATE TABLE console_users (
    name          text PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('operator', 'authority', 'auditor')),
    authority     text CHECK (authority ~ '^[0-9]{3}$'),
    password_hash text NOT NULL,                 -- scrypt$n$r$p$salt$hash (hex)
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'authority') = (authority IS NOT NULL))
);
