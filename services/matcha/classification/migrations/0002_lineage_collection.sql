-- The collection (name, filter, label field) a classifier was trained from; NULL when trained on inline examples.
ALTER TABLE classification_classifiers ADD COLUMN source_collection jsonb;
