-- The unit's other letters to the applicant (Mẫu 02 supplement request, Mẫu 03 refusal,
-- Mẫu 05 stop, result ready) share the apology's table and its delivery (claim, lease,
-- backoff, dead letter, Message-ID): `kind` says which letter a row is. Still exactly one
-- apology per dossier (its notice_key is always ''); one supplement request per request
-- number; one of each other kind.
ALTER TABLE apologies
    ADD COLUMN kind       text NOT NULL DEFAULT 'apology',
    ADD COLUMN notice_key text NOT NULL DEFAULT '',
    ALTER COLUMN original_due_at DROP NOT NULL,
    ALTER COLUMN new_due_at DROP NOT NULL;
ALTER TABLE apologies DROP CONSTRAINT apologies_pkey;
ALTER TABLE apologies ADD PRIMARY KEY (dossier_code, kind, notice_key);
