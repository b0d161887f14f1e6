-- Inter-agency consultations (lấy ý kiến): one row per consulted unit of a request, with its
-- reply due time, the reply and its lateness, and when the deadline service saw it overdue.
CREATE TABLE consultations (
    dossier_code         text        NOT NULL REFERENCES dossiers (code),
    consultation_id      integer     NOT NULL,
    requesting_unit_code text        NOT NULL,
    unit_code            text        NOT NULL,
    question             text        NOT NULL,
    requested_at         timestamptz NOT NULL,
    reply_due_at         timestamptz NOT NULL,
    replied_at           timestamptz,
    late                 boolean,
    overdue_at           timestamptz,
    PRIMARY KEY (dossier_code, consultation_id)
);
CREATE INDEX consultations_by_unit ON consultations (unit_code, replied_at);
