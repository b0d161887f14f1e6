-- Downstream readers order one dossier's events across topics: each event names the event it
-- reacts to (causation), and carries its number among this service's events of the dossier.
ALTER TABLE outbox
    ADD COLUMN causation_id     uuid,
    ADD COLUMN dossier_sequence bigint;

CREATE TABLE event_sequences (
    dossier_code text   PRIMARY KEY,
    last_value   bigint NOT NULL
);
