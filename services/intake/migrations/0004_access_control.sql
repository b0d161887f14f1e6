-- Idempotency keys belong to the caller who sent them and to the body they were sent with:
-- another caller's key never returns someone else's receipt, and a reused key with another
-- body is refused (422).
ALTER TABLE dossiers DROP CONSTRAINT IF EXISTS dossiers_idempotency_key_key;
ALTER TABLE dossiers ADD COLUMN idempotency_subject text;
ALTER TABLE dossiers ADD COLUMN idempotency_body_sha256 text;
UPDATE dossiers SET idempotency_subject = 'before-access-control' WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX dossiers_idempotency ON dossiers (idempotency_subject, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
