-- A signal that carried the resume capability its run issued for the key: it needs none of the
-- await step's roles (the run handed that right out itself).
ALTER TABLE conductor_signals ADD COLUMN bound boolean NOT NULL DEFAULT false;
