-- The clock starts from the receipt (intake's topic); routing's plan adds the step clocks.
ALTER TABLE clocks
    ADD COLUMN appointed_at           timestamptz,
    ADD COLUMN paused_working_seconds bigint NOT NULL DEFAULT 0;
UPDATE clocks SET appointed_at = due_at WHERE appointed_at IS NULL;
ALTER TABLE clocks ALTER COLUMN appointed_at SET NOT NULL;
ALTER TABLE step_clocks ADD COLUMN timeliness text;
