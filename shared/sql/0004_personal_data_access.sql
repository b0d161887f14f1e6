-- Every read of a citizen's personal data (Decree 13/2023): who, which dossier, when, why, and
-- the trace of the request, so an operator can answer "who saw this dossier's applicant?".
CREATE TABLE personal_data_access (
    id           bigserial   PRIMARY KEY,
    accessed_at  timestamptz NOT NULL,
    subject      text        NOT NULL,  -- the token's subject, or 'citizen' for a PIN lookup
    username     text,
    unit_code    text,
    dossier_code text        NOT NULL,
    purpose      text        NOT NULL,  -- the operation, e.g. 'GET /v1/dossiers/{code}'
    trace_id     text
);
CREATE INDEX personal_data_access_dossier ON personal_data_access (dossier_code, accessed_at);
CREATE INDEX personal_data_access_subject ON personal_data_access (subject, accessed_at);
