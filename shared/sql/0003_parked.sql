-- Messages whose prerequisite (an event from another topic) has not been applied yet. They
-- wait here, off the partition, so that the dossiers behind them move on; later messages of
-- the same dossier on the same topic wait behind them, to keep the dossier's order.
CREATE TABLE parked (
    id             bigserial   PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    dossier_code   text        NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    origin         text        NOT NULL,  -- partition/offset, for the dead letter
    message_key    bytea,
    message_value  bytea,
    headers        jsonb       NOT NULL,
    reason         text        NOT NULL,
    parked_at      timestamptz NOT NULL,
    UNIQUE (consumer_group, event_id)
);
CREATE INDEX parked_dossier ON parked (consumer_group, topic, dossier_code, id);
