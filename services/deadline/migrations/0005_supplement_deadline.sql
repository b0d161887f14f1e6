-- By when the citizen must supplement a dossier paused for it (Mẫu 02), and when the
-- scheduler saw that time pass with nothing received; the partial index serves its scan.
ALTER TABLE clocks
    ADD COLUMN supplement_due_at    timestamptz,
    ADD COLUMN supplement_missed_at timestamptz;
CREATE INDEX clocks_supplement_pending ON clocks (supplement_due_at)
    WHERE status = 'paused' AND supplement_missed_at IS NULL;
