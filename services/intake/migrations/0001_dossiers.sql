-- The per-unit, per-day counter behind dossier codes ({unit}-{YYMMDD}-{NNNN}).
CREATE TABLE dossier_sequences (
    unit_code    text    NOT NULL,
    receipt_date date    NOT NULL,
    last_value   integer NOT NULL,
    PRIMARY KEY (unit_code, receipt_date)
);

CREATE TABLE dossiers (
    code                text        PRIMARY KEY,
    procedure_code      text        NOT NULL,
    receiving_unit_code text        NOT NULL,  -- as it was at receipt: unit codes change
    channel             text        NOT NULL,
    status              smallint    NOT NULL,
    received_at         timestamptz NOT NULL,
    appointment_at      timestamptz NOT NULL,
    receipt             jsonb       NOT NULL,  -- the slip as issued (Mẫu 01)
    idempotency_key     text        UNIQUE,
    routing             jsonb,                 -- what routing decided, from its events
    deadline            jsonb,                 -- the clock the deadline service keeps
    notifier            jsonb,                 -- what the notifier owes
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dossiers_unit_received ON dossiers (receiving_unit_code, received_at);
