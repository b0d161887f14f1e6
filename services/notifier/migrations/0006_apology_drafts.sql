-- At due-soon the unit at fault gets a draft apology (Mẫu 04) to complete: the reason it
-- enters and the new return date it chooses (no later than latest_new_due_at); its head
-- approves and signs, and the letter is issued (a row of apologies). One draft per dossier.
CREATE TABLE apology_drafts (
    dossier_code      text        PRIMARY KEY,
    unit_code         text        NOT NULL,
    original_due_at   timestamptz NOT NULL,
    latest_new_due_at timestamptz NOT NULL,
    opened_at         timestamptz NOT NULL,
    reason            text,
    new_due_at        timestamptz,
    filled_by         text,
    filled_at         timestamptz
);

-- Issued by its unit's head in time, or by the city on the unit's behalf once the due date
-- passed with no signed apology (late).
ALTER TABLE apologies
    ADD COLUMN timeliness        text    NOT NULL DEFAULT 'on_time',
    ADD COLUMN on_behalf_of_city boolean NOT NULL DEFAULT false,
    ADD COLUMN signed_by         text;
