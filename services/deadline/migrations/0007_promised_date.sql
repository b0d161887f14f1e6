-- The new return date an apology (Mẫu 04) promised: a deadline of its own, with its own
-- due-soon time; missing it is a broken promise, detected once.
ALTER TABLE clocks
    ADD COLUMN promised_at                  timestamptz,
    ADD COLUMN promise_unit_code            text,
    ADD COLUMN promise_due_soon_at          timestamptz,
    ADD COLUMN promise_due_soon_detected_at timestamptz,
    ADD COLUMN promise_broken_at            timestamptz;
CREATE INDEX clocks_promise_due ON clocks (promised_at)
    WHERE status = 'running' AND promise_broken_at IS NULL;
