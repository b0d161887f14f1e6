-- Parallel steps and send-backs: several steps may be open at once (started, not completed),
-- and a reopened step gets a fresh due time from its share. Steps planned before this have
-- no share or stage recorded: each is its own stage, and the current one has started.
ALTER TABLE step_clocks
    ADD COLUMN started_at timestamptz,
    ADD COLUMN share      double precision,
    ADD COLUMN stage      integer;
UPDATE step_clocks SET stage = sequence;
UPDATE step_clocks s SET started_at = c.started_at
    FROM clocks c WHERE c.dossier_code = s.dossier_code AND s.sequence = c.current_step;
