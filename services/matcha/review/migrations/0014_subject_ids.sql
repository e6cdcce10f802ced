-- The data subjects a draft is about or addressed to, as submitted: erasing a subject erases the items naming
-- it with everything kept for them, and the data map lists them.
ALTER TABLE review_items ADD COLUMN subject_ids text[] NOT NULL DEFAULT '{}';
CREATE INDEX review_items_subjects ON review_items USING gin (subject_ids);
