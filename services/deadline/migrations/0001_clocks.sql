-- Each dossier's clock; due_at is indexed for the lateness scheduler.
CREATE TABLE clocks (
    dossier_code          text        PRIMARY KEY,
    responsible_unit_code text        NOT NULL,
    started_at            timestamptz NOT NULL,
    due_at                timestamptz NOT NULL,
    due_soon_at           timestamptz NOT NULL
);
CREATE INDEX clocks_due_at ON clocks (due_at);
