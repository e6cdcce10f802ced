"""Data stored under an earlier schema survives the migrations after it."""

import uuid

import asyncpg
import numpy as np
import pytest

from matcha.runtime.database import apply_migrations, load_migrations


async def test_memberships_move_into_one_partition_per_ready_version_and_values_are_packed(postgres_url):
    database = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE DATABASE {database}")
    try:
        connection = await asyncpg.connect(postgres_url, database=database)
        try:
            migrations = load_migrations("segmentation", "matcha.segmentation.migrations")
            # Before memberships were partitioned by version (0004) and caller feature values packed (0005).
            await apply_migrations(connection, [migration for migration in migrations if migration.version <= 3])
            customers = await connection.fetch(
                """INSERT INTO segmentation_customers (tenant, id, data_class, custom_names, custom_values)
                   SELECT 't', 'c' || n, 2, '{age,spend}', ARRAY[n * 10, n / 4.0] FROM generate_series(1, 3) n
                   RETURNING key"""
            )
            ready, failed = [
                await connection.fetchval(
                    """INSERT INTO segmentation_versions (tenant, name, version, state, method, features, purpose)
                       VALUES ('t', 'value', $1, $2, 1, '{recency}', 'campaign') RETURNING id""",
                    number,
                    state,
                )
                for number, state in ((1, 2), (2, 3))
            ]
            await connection.executemany(
                """INSERT INTO segmentation_memberships (version_id, customer_key, position, build_position,
                                                         distance, confidence) VALUES ($1, $2, $3, $3, $4, 0.5)""",
                [(ready, row["key"], index % 2, index / 10) for index, row in enumerate(customers)],
            )

            assert await apply_migrations(connection, migrations) == len(migrations) - 3

            packed = await connection.fetch("SELECT custom_values FROM segmentation_customers ORDER BY key")
            assert [np.frombuffer(row["custom_values"], ">f8").tolist() for row in packed] == [
                [n * 10, n / 4] for n in (1, 2, 3)
            ]

            partitions = await connection.fetch(
                """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'segmentation_memberships'::regclass AND c.relkind = 'r'"""
            )
            assert [(row["relname"], row["bound"]) for row in partitions] == [
                (f"segmentation_memberships_{ready}", f"FOR VALUES IN ('{ready}')")
            ]
            rows = await connection.fetch(
                "SELECT customer_key, position, distance FROM segmentation_memberships ORDER BY customer_key"
            )
            assert [tuple(row) for row in rows] == [(row["key"], i % 2, i / 10) for i, row in enumerate(customers)]
            # The partition is indexed as a build indexes its own: by customer (unique), and by segment.
            indexes = await connection.fetch(
                """SELECT indisunique, pg_get_indexdef(indexrelid) LIKE '%(customer_key)' AS by_customer,
                          pg_get_indexdef(indexrelid) LIKE '%(\"position\", distance)' AS by_segment
                   FROM pg_index WHERE indrelid = $1::regclass ORDER BY indisunique DESC""",
                f"segmentation_memberships_{ready}",
            )
            assert [tuple(row) for row in indexes] == [(True, True, False), (False, False, True)]
            # A version that never became ready has no partition: nothing can be written for it.
            with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
                await connection.execute(
                    """INSERT INTO segmentation_memberships (version_id, customer_key, position, build_position,
                                                             distance, confidence) VALUES ($1, $2, 0, 0, 0, 0)""",
                    failed,
                    customers[0]["key"],
                )
        finally:
            await connection.close()
    finally:
        await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        await admin.close()
