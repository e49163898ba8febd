-- Issue 14: subscriptions the bronhouder confirmed; issue 15: the outbox.
-- Times are seconds since the epoch (UTC), as in the PostgreSQL schema.
CREATE TABLE abonnementen (
    abonnement_id       TEXT PRIMARY KEY,
    bronhouder_id_type  TEXT NOT NULL,
    bronhouder_id       TEXT NOT NULL,
    subscriber_id_type  TEXT NOT NULL,
    subscriber_id       TEXT NOT NULL,
    notificatietype     TEXT NOT NULL,
    created_at          DOUBLE PRECISION NOT NULL,
    ended_at            DOUBLE PRECISION,
    ended_by_id_type    TEXT,
    ended_by_id         TEXT,
    end_reason          TEXT
);
CREATE INDEX abonnementen_subscriber
    ON abonnementen (subscriber_id_type, subscriber_id, notificatietype);
CREATE INDEX abonnementen_bronhouder ON abonnementen (bronhouder_id_type, bronhouder_id);

CREATE TABLE deliveries (
    delivery_id         TEXT PRIMARY KEY,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    sender              TEXT NOT NULL,
    recipient_id_type   TEXT NOT NULL,
    recipient_id        TEXT NOT NULL,
    body                BYTEA NOT NULL,
    headers             JSONB NOT NULL,
    decision_id         TEXT NOT NULL,
    trace_id            TEXT,
    attempts            JSONB NOT NULL DEFAULT '[]',
    next_attempt_at     DOUBLE PRECISION NOT NULL,
    lease_until         DOUBLE PRECISION,
    created_at          DOUBLE PRECISION NOT NULL,
    finished_at         DOUBLE PRECISION
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
