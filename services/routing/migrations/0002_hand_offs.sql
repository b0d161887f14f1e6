-- Who holds each dossier now, since when, and where the result returns.
ALTER TABLE routes
    ADD COLUMN receiving_unit_code text,
    ADD COLUMN step_started_at     timestamptz;
ALTER TABLE route_steps
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN official     text,
    ADD COLUMN timeliness   text;
