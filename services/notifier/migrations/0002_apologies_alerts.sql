-- Whom a letter is addressed to (personal data, from DossierReceived; never logged).
CREATE TABLE addressees (
    dossier_code        text        PRIMARY KEY,
    procedure_name      text        NOT NULL,
    receiving_unit_code text        NOT NULL,
    received_at         timestamptz NOT NULL,
    full_name           text        NOT NULL,
    address             text        NOT NULL,
    email               text,
    phone               text
);

-- Exactly one apology per dossier (the new date may be set once): the primary key says so.
CREATE TABLE apologies (
    dossier_code      text        PRIMARY KEY,
    letter_number     text        NOT NULL UNIQUE,
    unit_code         text        NOT NULL,
    signer_title      text        NOT NULL,
    reason            text        NOT NULL,
    original_due_at   timestamptz NOT NULL,
    new_due_at        timestamptz NOT NULL,
    issued_at         timestamptz NOT NULL,
    channel           text        NOT NULL,
    letter            jsonb       NOT NULL,
    html              text        NOT NULL,
    pdf               bytea       NOT NULL,
    delivered_at      timestamptz,
    delivery_attempts integer     NOT NULL DEFAULT 0,
    last_error        text
);
CREATE INDEX apologies_undelivered ON apologies (issued_at) WHERE delivered_at IS NULL;

CREATE TABLE letter_numbers (
    unit_code  text    NOT NULL,
    year       integer NOT NULL,
    last_value integer NOT NULL,
    PRIMARY KEY (unit_code, year)
);

-- Alerts to the head of the late unit and to operators; one per dossier, kind and step.
CREATE TABLE alerts (
    dossier_code      text        NOT NULL,
    kind              text        NOT NULL,
    step_sequence     integer     NOT NULL DEFAULT 0,
    unit_code         text        NOT NULL,
    recipients        text[]      NOT NULL,
    raised_at         timestamptz NOT NULL,
    delivered_at      timestamptz,
    delivery_attempts integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (dossier_code, kind, step_sequence)
);
CREATE INDEX alerts_undelivered ON alerts (raised_at) WHERE delivered_at IS NULL;
