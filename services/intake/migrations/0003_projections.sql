-- Intake's view of what the other services decided is a projection of their events, kept in
-- columns that each event updates: no snapshot of an event that a later one could leave stale.
ALTER TABLE dossiers
    DROP COLUMN routing,
    DROP COLUMN deadline,
    DROP COLUMN notifier,
    DROP COLUMN step_units,
    ADD COLUMN routed_at          timestamptz,  -- routing: the plan and who holds it
    ADD COLUMN holder_since       timestamptz,
    ADD COLUMN last_rejection     jsonb,        -- the last hand-off routing rejected, and why
    ADD COLUMN clock_started_at   timestamptz,  -- deadline: the clock
    ADD COLUMN due_soon_at        timestamptz,
    ADD COLUMN apology_due_by     timestamptz,  -- notifier: the apology it would owe
    ADD COLUMN apology_signer     text;

-- Each step of the process: routing's plan, the deadline service's due time and verdict,
-- and the hand-off that ended it (the processing control slip, Mẫu 06).
CREATE TABLE dossier_steps (
    dossier_code  text        NOT NULL REFERENCES dossiers (code),
    step_sequence integer     NOT NULL,
    unit_code     text,
    unit_name     text,
    task          text,
    due_at        timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    official      text,
    timeliness    text,
    PRIMARY KEY (dossier_code, step_sequence)
);
INSERT INTO dossier_steps (dossier_code, step_sequence, unit_code, due_at, started_at,
                           finished_at, official, timeliness)
    SELECT dossier_code, step_sequence, unit_code, step_due_at, started_at, finished_at,
           official, timeliness
    FROM step_records;
DROP TABLE step_records;
CREATE INDEX dossier_steps_unit ON dossier_steps (unit_code, finished_at);
CREATE INDEX dossiers_holder ON dossiers (current_unit_code) WHERE closed_at IS NULL;
