-- Caller feature values packed as big-endian float8 (what float8send writes) instead of a
-- float8[]: a build reads every customer's values, and a bytea goes out as it is stored where an
-- array is re-encoded element by element, with a length before each one.
ALTER TABLE segmentation_customers ADD COLUMN custom_values_packed bytea NOT NULL DEFAULT '';
UPDATE segmentation_customers c
SET custom_values_packed = (SELECT string_agg(float8send(v), ''::bytea ORDER BY n)
                            FROM unnest(c.custom_values) WITH ORDINALITY AS u(v, n))
WHERE c.custom_values <> '{}';
ALTER TABLE segmentation_customers DROP COLUMN custom_values;
ALTER TABLE segmentation_customers RENAME COLUMN custom_values_packed TO custom_values;
