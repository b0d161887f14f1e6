-- The apology each dossier will be owed if it is not done in time (one per dossier).
CREATE TABLE apology_obligations (
    dossier_code          text        PRIMARY KEY,
    responsible_unit_code text        NOT NULL,
    signer_title          text        NOT NULL,
    apology_due_by        timestamptz NOT NULL,
    due_at                timestamptz NOT NULL,
    issued_at             timestamptz
);
CREATE INDEX apology_obligations_due_by ON apology_obligations (apology_due_by)
    WHERE issued_at IS NULL;
