-- The unit whose calendar (office hours) the clock runs in.
ALTER TABLE clocks ADD COLUMN competent_unit_code text;
