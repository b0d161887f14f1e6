-- Who holds each dossier, and the plan of its steps.
CREATE TABLE routes (
    dossier_code        text        PRIMARY KEY,
    procedure_code      text        NOT NULL,
    competent_unit_code text        NOT NULL,
    current_unit_code   text        NOT NULL,
    current_step        integer     NOT NULL DEFAULT 1,
    due_at              timestamptz NOT NULL,
    routed_at           timestamptz NOT NULL
);

CREATE TABLE route_steps (
    dossier_code text        NOT NULL REFERENCES routes (dossier_code),
    sequence     integer     NOT NULL,
    unit_code    text        NOT NULL,
    task         text        NOT NULL,
    due_at       timestamptz NOT NULL,
    PRIMARY KEY (dossier_code, sequence)
);
CREATE INDEX route_steps_unit ON route_steps (unit_code);
