-- The applicant comes on the restricted topic (ApplicantDetailsRecorded), the receipt on
-- intake's public one: either may be applied first, so each fills its own columns.
-- Personal data is erased a retention period after the dossier's end: the columns become
-- NULL, the letter's HTML and PDF too (they hold the name and address); the rest stays.
ALTER TABLE addressees
    ALTER COLUMN procedure_name DROP NOT NULL,
    ALTER COLUMN receiving_unit_code DROP NOT NULL,
    ALTER COLUMN received_at DROP NOT NULL,
    ALTER COLUMN full_name DROP NOT NULL,
    ALTER COLUMN address DROP NOT NULL,
    ADD COLUMN applicant_recorded boolean NOT NULL DEFAULT true,
    ADD COLUMN ended_at timestamptz,
    ADD COLUMN personal_data_erased_at timestamptz;
ALTER TABLE addressees ALTER COLUMN applicant_recorded SET DEFAULT false;
CREATE INDEX addressees_to_erase ON addressees (ended_at)
    WHERE personal_data_erased_at IS NULL AND ended_at IS NOT NULL;

ALTER TABLE apologies
    ALTER COLUMN html DROP NOT NULL,
    ALTER COLUMN pdf DROP NOT NULL;
