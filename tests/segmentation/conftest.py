"""Segmentation fixtures: the service on the shared embedded PostgreSQL, stubs per tenant, CDNOW data."""

import importlib.metadata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from matcha.common.v1 import common_pb2
from matcha.runtime.server import MatchaServer
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc


def cdnow_path() -> Path:
    """CDNOW_master.txt as shipped by the `lifetimes` wheel (read by path: lifetimes itself is not imported)."""
    path = Path(importlib.metadata.distribution("lifetimes").locate_file("lifetimes/datasets/CDNOW_master.txt"))
    assert path.exists(), path
    return path


def read_cdnow(limit_customers: int | None = None) -> list[tuple[str, str, datetime, float, float]]:
    """(transaction id, customer id, time, amount, quantity) per line."""
    rows = []
    with cdnow_path().open() as handle:
        next(handle)  # header
        for number, line in enumerate(handle, start=1):
            customer, day, quantity, amount = line.split()
            if limit_customers is not None and int(customer) > limit_customers:
                continue
            time = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
            rows.append((f"t{number}", customer, time, float(amount), float(quantity)))
    return rows


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def transactions(rows) -> list[pb.Transaction]:
    return [
        pb.Transaction(id=tid, customer_id=customer, time=timestamp(time), amount=amount, quantity=quantity)
        for tid, customer, time, amount, quantity in rows
    ]


@pytest.fixture(scope="session")
def segmentation_settings(postgres_url, state_dir):
    def make(**overrides) -> SegmentationSettings:
        return SegmentationSettings(
            database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0", **overrides
        )

    return make


@pytest.fixture(scope="session")
async def segmentation_server(segmentation_settings, serve) -> AsyncIterator[MatchaServer]:
    settings = segmentation_settings()
    async with serve(build_segmentation_service(settings), settings) as server:
        yield server


@pytest.fixture
def stub_for(segmentation_server, connect):
    def make(tenant, **kwargs) -> segmentation_pb2_grpc.SegmentationServiceStub:
        return segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_server, tenant, **kwargs))

    return make


POLICY = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])


async def ingest_cdnow(stub, customers: int) -> list[tuple[str, str, datetime, float, float]]:
    """Ingests the transactions of the first `customers` CDNOW customers; returns them."""
    rows = read_cdnow(customers)
    await stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=transactions(rows), default_policy=POLICY))
    return rows
