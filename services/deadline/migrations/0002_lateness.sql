-- The clock's state, and what has been detected; partial indexes serve the scheduler.
ALTER TABLE clocks
    ADD COLUMN status                 text NOT NULL DEFAULT 'running',
    ADD COLUMN paused_at              timestamptz,
    ADD COLUMN pause_cause            text,
    ADD COLUMN current_step           integer NOT NULL DEFAULT 1,
    ADD COLUMN due_soon_detected_at   timestamptz,
    ADD COLUMN overdue_detected_at    timestamptz,
    ADD COLUMN completed_at           timestamptz,
    ADD COLUMN timeliness             text,
    ADD COLUMN submission_traceparent text;
CREATE INDEX clocks_due_soon_pending ON clocks (due_soon_at)
    WHERE status = 'running' AND due_soon_detected_at IS NULL;
CREATE INDEX clocks_overdue_pending ON clocks (due_at)
    WHERE status = 'running' AND overdue_detected_at IS NULL;

CREATE TABLE step_clocks (
    dossier_code        text        NOT NULL REFERENCES clocks (dossier_code),
    sequence            integer     NOT NULL,
    unit_code           text        NOT NULL,
    due_at              timestamptz NOT NULL,
    completed_at        timestamptz,
    overdue_detected_at timestamptz,
    PRIMARY KEY (dossier_code, sequence)
);
CREATE INDEX step_clocks_pending ON step_clocks (due_at)
    WHERE completed_at IS NULL AND overdue_detected_at IS NULL;
