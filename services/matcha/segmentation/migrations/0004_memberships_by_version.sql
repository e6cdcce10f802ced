-- Memberships partitioned by version, one table per version with its own two indexes: the
-- customer (the key of a membership within its version) and the members of a segment by
-- distance. A build copies its rows into a fresh table, builds each index in one pass and only
-- then attaches the table: maintaining a (version, position, distance) index row by row made
-- storing a million memberships several times dearer than copying them. The parent has no
-- index of its own; every query names its version, so it reads one partition.
ALTER TABLE segmentation_memberships RENAME TO segmentation_memberships_unpartitioned;
ALTER TABLE segmentation_memberships_unpartitioned DROP CONSTRAINT segmentation_memberships_pkey;
DROP INDEX segmentation_memberships_segment;

CREATE TABLE segmentation_memberships (
    version_id     bigint      NOT NULL,
    customer_key   bigint      NOT NULL,
    position       smallint    NOT NULL,
    build_position smallint    NOT NULL,
    distance       float8      NOT NULL,
    confidence     float8      NOT NULL,
    since          timestamptz NOT NULL DEFAULT now()
) PARTITION BY LIST (version_id);

DO $$
DECLARE
    version_id bigint;
    partition  text;
BEGIN
    FOR version_id IN SELECT id FROM segmentation_versions WHERE state = 2 LOOP
        partition := format('segmentation_memberships_%s', version_id);
        EXECUTE format('CREATE TABLE %I PARTITION OF segmentation_memberships FOR VALUES IN (%s)',
                       partition, version_id);
        EXECUTE format('INSERT INTO %I SELECT * FROM segmentation_memberships_unpartitioned
                        WHERE version_id = %s ORDER BY position, distance', partition, version_id);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (customer_key)', partition);
        EXECUTE format('CREATE INDEX ON %I (position, distance)', partition);
    END LOOP;
END $$;
DROP TABLE segmentation_memberships_unpartitioned;
