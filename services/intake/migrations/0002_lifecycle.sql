-- The desk's record of the lifecycle, and what operators read: timeline, control slip, board.
ALTER TABLE dossiers
    ADD COLUMN submission_traceparent text,
    ADD COLUMN competent_unit_code    text,
    ADD COLUMN current_unit_code      text,
    ADD COLUMN current_step           integer,
    ADD COLUMN step_units             text[],
    ADD COLUMN supplement_requests    integer NOT NULL DEFAULT 0,
    ADD COLUMN due_at                 timestamptz,
    ADD COLUMN paused_since           timestamptz,
    ADD COLUMN overdue_at             timestamptz,
    ADD COLUMN completed_at           timestamptz,
    ADD COLUMN timeliness             text,
    ADD COLUMN apology_issued_at      timestamptz,
    ADD COLUMN closed_at              timestamptz;
CREATE INDEX dossiers_competent_unit ON dossiers (competent_unit_code);

-- Every event of a dossier, as the timeline shows it.
CREATE TABLE timeline (
    id           bigserial   PRIMARY KEY,
    dossier_code text        NOT NULL REFERENCES dossiers (code),
    occurred_at  timestamptz NOT NULL,
    event_type   text        NOT NULL,
    unit_code    text,
    details      jsonb       NOT NULL
);
CREATE INDEX timeline_dossier ON timeline (dossier_code, occurred_at, id);

-- The processing control slip (Mẫu 06): one row per completed step.
CREATE TABLE step_records (
    dossier_code  text        NOT NULL REFERENCES dossiers (code),
    step_sequence integer     NOT NULL,
    unit_code     text        NOT NULL,
    official      text        NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    step_due_at   timestamptz NOT NULL,
    timeliness    text        NOT NULL,
    PRIMARY KEY (dossier_code, step_sequence)
);
CREATE INDEX step_records_unit ON step_records (unit_code, finished_at);
