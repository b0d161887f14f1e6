-- Due times are the deadline service's: routing keeps the plan and who holds the dossier.
ALTER TABLE routes DROP COLUMN due_at;
ALTER TABLE route_steps DROP COLUMN due_at, DROP COLUMN timeliness;
