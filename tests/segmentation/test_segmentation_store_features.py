"""Caller features read back for builds: the stored values arrays of the tenant's common set of names,
jsonb for customers with another set, NaN where a customer lacks a feature."""

import math

import numpy as np
import pytest

from matcha.runtime.database import Database, load_migrations
from matcha.runtime.governance import DataClass, RecordPolicy
from matcha.segmentation import binary_copy
from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.records import CustomerRow

POLICY = RecordPolicy(DataClass.PERSONAL, frozenset({"campaign"}))


@pytest.fixture
async def store(postgres_url):
    database = Database(postgres_url, pool_size=2)
    await database.connect(load_migrations("segmentation", "matcha.segmentation.migrations"))
    try:
        yield CustomerStore(database)
    finally:
        await database.close()


async def upsert(store, tenant, features: dict[str, dict[str, float]]) -> None:
    rows = [CustomerRow(id, {}, values, None, POLICY) for id, values in features.items()]
    async with store.pool.acquire() as connection:
        await store.upsert_customers(connection, tenant, rows)


async def test_custom_features_mixed_name_sets_and_merges(store, tenant):
    common = {
        f"c{index}": {"spend_score": float(index), "engagement": index / 2, "age": 20.0 + index} for index in range(8)
    }
    await upsert(store, tenant, common)
    await upsert(
        store,
        tenant,
        {
            "other_order": {"age": 70.0, "spend_score": -1.5},  # lacks engagement
            "extra": {"engagement": 9.0, "spend_score": 2.0, "age": 33.0, "region_index": 4.0},
            "empty": {},
        },
    )
    # A merge moves c0 out of the common set; c1 is updated within it.
    await upsert(store, tenant, {"c0": {"region_index": 1.0}, "c1": {"engagement": 100.0}})

    wanted = ["engagement", "region_index", "spend_score", "age"]
    table, _ = await store.load_features(store.pool, tenant, "campaign", wanted, built_in=False)
    ids = await store.customer_ids(store.pool, table.keys.tolist())
    got = {ids[key]: [table.columns[name][row] for name in wanted] for row, key in enumerate(table.keys.tolist())}
    expected = {
        **{f"c{i}": [i / 2, math.nan, float(i), 20.0 + i] for i in range(2, 8)},
        "c0": [0.0, 1.0, 0.0, 20.0],
        "c1": [100.0, math.nan, 1.0, 21.0],
        "other_order": [math.nan, math.nan, -1.5, 70.0],
        "extra": [9.0, 4.0, 2.0, 33.0],
        "empty": [math.nan] * 4,
    }
    assert got.keys() == expected.keys()
    for customer, values in expected.items():
        np.testing.assert_array_equal(got[customer], values, err_msg=customer)
    assert list(table.keys) == sorted(table.keys)

    # Only features outside the common set, and a subset of it: the same values.
    table, _ = await store.load_features(store.pool, tenant, "campaign", ["region_index"], built_in=False)
    assert np.isnan(table.columns["region_index"]).sum() == len(table) - 2
    keys = table.keys[:3].tolist()
    subset, _ = await store.load_features(store.pool, tenant, "campaign", ["age"], keys, built_in=True)
    assert subset.keys.tolist() == keys and len(subset.columns) == 10


def _copy_row(key: int, values: list[float], length: int) -> bytes:
    fields = np.array([2], ">i2").tobytes() + np.array([8], ">i4").tobytes() + np.array([key], ">i8").tobytes()
    return fields + np.array([length], ">i4").tobytes() + np.array(values, ">f8").tobytes()


def test_packed_float8_column_decodes_and_refuses_other_widths():
    good = binary_copy._SIGNATURE + _copy_row(7, [2.5, -1.0], 16) + _copy_row(9, [0.0, 4.0], 16)
    keys, matrix = binary_copy.decode(good + binary_copy._TRAILER, [">i8", binary_copy.packed_float8(2)])
    assert keys.tolist() == [7, 9] and matrix.tolist() == [[2.5, -1.0], [0.0, 4.0]]
    null = binary_copy._SIGNATURE + _copy_row(7, [0.0, 0.0], -1) + binary_copy._TRAILER
    with pytest.raises(ValueError):
        binary_copy.decode(null, [">i8", binary_copy.packed_float8(2)])
