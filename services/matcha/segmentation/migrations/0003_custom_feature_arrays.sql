-- Caller features also as two aligned arrays, names in the jsonb's own key order (the same for every
-- object with the same keys) and values as float8, written with `custom_features` by the statement
-- that upserts customers. A build reads the values array whole, a fraction of the cost of extracting
-- and casting each feature from jsonb per customer; customers of a tenant usually share one set of
-- names, so their arrays have one width and decode as one matrix.
ALTER TABLE segmentation_customers
    ADD COLUMN custom_names  text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN custom_values float8[] NOT NULL DEFAULT '{}';

UPDATE segmentation_customers c
SET (custom_names, custom_values) = (
    SELECT array_agg(key), array_agg(coalesce((value #>> '{}')::float8, 'NaN')) FROM jsonb_each(c.custom_features))
WHERE c.custom_features <> '{}';
