-- Start of a delivery's current retry window: when it was written, or queued again by Redeliver. A delivery still
-- failing at the configured maximum age from it is FAILED.
ALTER TABLE review_outbox ADD COLUMN retry_from timestamptz NOT NULL DEFAULT now();
UPDATE review_outbox SET retry_from = created_at;
