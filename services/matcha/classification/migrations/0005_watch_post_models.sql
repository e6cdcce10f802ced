-- The sentiment model that scored each watch post (id and version), so that a report lists the models behind
-- it for the audit ledger.
ALTER TABLE classification_watch_posts ADD COLUMN sentiment_model_id text, ADD COLUMN sentiment_model_version text;
