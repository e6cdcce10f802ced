-- The resume capability a run issued with its submission, delivered with the decision's signal: the
-- conductor resumes a run only with the capability it issued for that key.
ALTER TABLE review_items ADD COLUMN resume_capability text NOT NULL DEFAULT '';
ALTER TABLE review_outbox ADD COLUMN capability text NOT NULL DEFAULT '';
