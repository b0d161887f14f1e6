-- Each consulted unit's reply due time (lấy ý kiến), its reply, and when the scheduler saw
-- the due time pass with no reply; the partial index serves the scheduler's scan.
CREATE TABLE consultation_clocks (
    dossier_code         text        NOT NULL REFERENCES clocks (dossier_code),
    consultation_id      integer     NOT NULL,
    unit_code            text        NOT NULL,
    reply_due_at         timestamptz NOT NULL,
    replied_at           timestamptz,
    overdue_detected_at  timestamptz,
    PRIMARY KEY (dossier_code, consultation_id)
);
CREATE INDEX consultation_clocks_awaited ON consultation_clocks (reply_due_at)
    WHERE replied_at IS NULL AND overdue_detected_at IS NULL;
