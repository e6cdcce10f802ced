"""What writing every call to the access ledger costs: the same services with access records on and off, same run.

Targets: embedding `Search` and classification `Classify` throughput with records on at least 0.9x with records
off (8 concurrent clients in a process of their own, see load_clients); Search p50 with records on reported beside
off (one client). Rounds alternate on and off, so the machine's noise hits both alike; medians are compared.
"""

import asyncio
import json
import statistics
import sys
import time
from contextlib import AsyncExitStack

import pytest

from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.common.v1 import common_pb2
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from tests.benchmarks.load_clients import COLLECTION, TEXT

pytestmark = pytest.mark.bench

CLIENTS, CALLS_PER_CLIENT, ROUNDS, LATENCY_SAMPLES = 8, 60, 3, 300
DOCUMENTS = [f"{TEXT}, variation {index}: {'oat ' * (index % 7)}{'cold ' * (index % 3)}" for index in range(256)]


async def _rate(port: int, method: str, token: str) -> float:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.benchmarks.load_clients",
        "grpc",
        f"127.0.0.1:{port}",
        method,
        f"--token={token}",
        f"--clients={CLIENTS}",
        f"--calls={CALLS_PER_CLIENT}",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0, "load clients failed"
    return json.loads(stdout)["calls_per_second"]


async def _p50(stub, query) -> float:
    request = embedding_pb2.SearchRequest(collection=COLLECTION, vector=query, top_k=10)
    times = []
    for _ in range(LATENCY_SAMPLES):
        started = time.perf_counter()
        await stub.Search(request)
        times.append(time.perf_counter() - started)
    return statistics.median(times[20:]) * 1000


async def test_access_records_cost_little(
    embedding_settings, postgres_url, state_dir, serve, local_encoder, connect, issuer, tenant
):
    token = issuer.mint(subject="bench", tenant=tenant, roles=["analyst", "operator", "admin"])
    classification = ClassificationSettings(
        database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0"
    )
    embedding = embedding_settings()
    async with AsyncExitStack() as stack:
        servers = {}
        for recorded in (True, False):
            servers[("embedding", recorded)] = await stack.enter_async_context(
                serve(build_embedding_service(embedding, encoder=local_encoder), embedding, record_accesses=recorded)
            )
            servers[("classification", recorded)] = await stack.enter_async_context(
                serve(
                    build_classification_service(classification, encoder=local_encoder),
                    classification,
                    record_accesses=recorded,
                )
            )
        writer = embedding_pb2_grpc.EmbeddingServiceStub(
            connect(servers[("embedding", True)], tenant, roles=("operator", "analyst"))
        )
        await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name=COLLECTION))
        await writer.Upsert(
            embedding_pb2.UpsertRequest(
                collection=COLLECTION,
                documents=[
                    embedding_pb2.Document(
                        id=f"doc-{index}",
                        text=text,
                        # Records with subjects, so each Search's row digests the subjects it returned.
                        policy=common_pb2.RecordPolicy(
                            data_class=common_pb2.DATA_CLASS_INTERNAL,
                            consented_purposes=["campaign"],
                            subject_id=f"customer-{index % 50}",
                        ),
                    )
                    for index, text in enumerate(DOCUMENTS)
                ],
            )
        )
        query = (await writer.Embed(embedding_pb2.EmbedRequest(texts=[TEXT]))).embeddings[0]

        rates: dict[tuple[str, bool], list[float]] = {key: [] for key in servers}
        latencies: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(ROUNDS):
            for recorded in (True, False):
                for service, method in (("embedding", "Search"), ("classification", "Classify")):
                    rates[(service, recorded)].append(await _rate(servers[(service, recorded)].port, method, token))
                stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(servers[("embedding", recorded)], tenant))
                latencies[recorded].append(await _p50(stub, query))

    lines, ratios = [], {}
    for service, method in (("embedding", "Search"), ("classification", "Classify")):
        on, off = statistics.median(rates[(service, True)]), statistics.median(rates[(service, False)])
        ratios[method] = on / off
        lines.append(f"  {method}: {on:.0f} calls/s with access records, {off:.0f} without, ratio {on / off:.2f}")
    on_p50, off_p50 = statistics.median(latencies[True]), statistics.median(latencies[False])
    lines.append(f"  Search p50 (one client): {on_p50:.2f} ms with access records, {off_p50:.2f} ms without")
    print("\naccess ledger overhead, " + f"{CLIENTS} clients, median of {ROUNDS} rounds:\n" + "\n".join(lines))
    assert ratios["Search"] >= 0.9
    assert ratios["Classify"] >= 0.9
