-- Parallel steps: several units may hold a dossier at once; the last send-back, for its view.
ALTER TABLE dossiers
    ADD COLUMN holding_unit_codes text[],
    ADD COLUMN last_send_back     jsonb;
