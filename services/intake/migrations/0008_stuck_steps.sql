-- "Stuck now" (services/intake/stuck.py) reads the open steps past their due time: a partial
-- index on the open steps' due times, so that finished steps (nearly all) are never scanned.
CREATE INDEX dossier_steps_open_due ON dossier_steps (due_at) WHERE finished_at IS NULL;
