-- The collection (name, filter, limit) a profile was learned from; NULL when learned from inline documents.
ALTER TABLE generation_voice_profiles ADD COLUMN source_collection jsonb;
