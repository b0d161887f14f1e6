-- One send per letter or alert, each on its own schedule (no head-of-line blocking):
-- a claim sets the attempt (attempt_id, attempt_started_at) and leases the row by moving
-- next_attempt_at past the send; the outcome clears the attempt. An attempt still set when
-- the lease ends is one whose outcome is unknown (a crash): it is sent again with the same
-- message_id, so that receiving systems drop the copy.
ALTER TABLE apologies
    ADD COLUMN next_attempt_at    timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN attempt_id         uuid,
    ADD COLUMN attempt_started_at timestamptz,
    ADD COLUMN message_id         text,
    ADD COLUMN dead_lettered_at   timestamptz;
DROP INDEX apologies_undelivered;
CREATE INDEX apologies_due ON apologies (next_attempt_at, issued_at)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;

ALTER TABLE alerts
    ADD COLUMN next_attempt_at    timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN attempt_id         uuid,
    ADD COLUMN attempt_started_at timestamptz,
    ADD COLUMN message_id         text,
    ADD COLUMN last_error         text,
    ADD COLUMN dead_lettered_at   timestamptz;
DROP INDEX alerts_undelivered;
CREATE INDEX alerts_due ON alerts (next_attempt_at, raised_at)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;
