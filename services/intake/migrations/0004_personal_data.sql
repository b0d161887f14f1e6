-- The applicant in the receipt is erased a retention period after the dossier's end
-- (closed_at): receipt.applicant becomes null, the dossier and its other facts stay.
ALTER TABLE dossiers ADD COLUMN personal_data_erased_at timestamptz;
CREATE INDEX dossiers_to_erase ON dossiers (closed_at)
    WHERE personal_data_erased_at IS NULL AND closed_at IS NOT NULL;
