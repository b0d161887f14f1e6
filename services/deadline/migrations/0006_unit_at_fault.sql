-- The unit whose step overran first (the control slip says which): it answers for the
-- dossier's lateness, apologises and its head signs, whoever holds the dossier afterwards.
ALTER TABLE clocks ADD COLUMN fault_unit_code text;
