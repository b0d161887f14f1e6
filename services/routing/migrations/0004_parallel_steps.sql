-- Parallel steps: routes.current_step now counts stages (a lone step or a parallel group);
-- in a plan without groups each step is its own stage, so the existing values stay right.
ALTER TABLE route_steps ADD COLUMN stage integer;
UPDATE route_steps SET stage = sequence;
ALTER TABLE route_steps ALTER COLUMN stage SET NOT NULL;
