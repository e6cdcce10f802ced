-- The data subjects of the customers an idempotent call ingested, kept with its stored reply: erasing a
-- subject erases the replies of the calls that carried their data, and the data map lists them. Replies
-- stored before this migration name no subject.
ALTER TABLE segmentation_idempotency ADD COLUMN subject_ids text[] NOT NULL DEFAULT '{}';
CREATE INDEX segmentation_idempotency_subjects ON segmentation_idempotency USING gin (subject_ids);
