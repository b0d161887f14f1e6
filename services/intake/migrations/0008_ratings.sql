-- Citizens' satisfaction ratings: one per dossier (the primary key refuses a second), the
-- units it counts for, and the free-text comment, which may hold personal data: it stays in
-- this table (never on a topic, never on the board) and retention erases it with the applicant.
CREATE TABLE ratings (
    dossier_code text        PRIMARY KEY REFERENCES dossiers (code),
    score        smallint    NOT NULL CHECK (score BETWEEN 1 AND 5),
    unit_codes   text[]      NOT NULL CHECK (cardinality(unit_codes) >= 1),
    comment      text,
    rated_at     timestamptz NOT NULL
);
CREATE INDEX ratings_by_time ON ratings (rated_at);
