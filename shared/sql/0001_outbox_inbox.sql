-- Transactional outbox: rows written in the same transaction as the state change they announce.
CREATE TABLE outbox (
    position      bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    message_key   text        NOT NULL,
    event_type    text        NOT NULL,
    source        text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    payload       text        NOT NULL,
    trace_context jsonb       NOT NULL DEFAULT '{}'::jsonb,
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;

-- Idempotent consumer: an event id is recorded once, in the transaction that applies it.
CREATE TABLE inbox (
    event_id    uuid        PRIMARY KEY,
    event_type  text        NOT NULL,
    source      text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
