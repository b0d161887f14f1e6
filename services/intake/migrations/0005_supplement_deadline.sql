-- The deadline service's supplement due time (while the clock waits for it) and when it was
-- seen missed, for the dossier's view.
ALTER TABLE dossiers
    ADD COLUMN supplement_due_at    timestamptz,
    ADD COLUMN supplement_missed_at timestamptz;
