"""Segmentation fixtures: the service on the shared embedded PostgreSQL, stubs per tenant, CDNOW data."""

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from google.protobuf import timestamp_pb2

from matcha.cli.segment import cdnow_path, cdnow_records, parse_time
from matcha.common.v1 import common_pb2
from matcha.runtime.server import MatchaServer
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc


def read_cdnow(limit_customers: int | None = None) -> list[tuple[str, str, datetime, float, float]]:
    """(transaction id, customer id, time, amount, quantity) of the CDNOW customers numbered up to the limit."""
    return [
        (
            record["id"],
            record["customer_id"],
            parse_time(record["time"]),
            float(record["amount"]),
            float(record["quantity"]),
        )
        for record in cdnow_records(cdnow_path())
        if limit_customers is None or int(record["customer_id"]) <= limit_customers
    ]


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
