"""Search on 100,000 stored 384-dim vectors: recall@10 against exact search, and the service's
p50 latency against a raw asyncpg query of the same HNSW index, in the same run.

Targets: recall@10 >= 0.95; service p50 <= 2x the raw query's p50.

The vectors are synthetic (seeded; 500 topics in a 24-dimensional latent space projected
to 384 dimensions, like real sentence embeddings' low intrinsic dimension): embedding
100,000 texts on two CPU cores would take most of an hour and measure the model, not the
search. They are loaded with COPY
into a collection created through the service, then the collection's HNSW index is
rebuilt with the store's own definition (a bulk build is much faster than 100,000
incremental inserts), so the service's own index is the one searched.
"""

import statistics
import time

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector

from matcha.embedding.store import SEARCH_SERVER_SETTINGS, collection_index_ddl, text_digest
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc

pytestmark = pytest.mark.bench

DOCUMENTS, DIMENSION, LATENT, TOPICS, QUERIES, TOP_K = 100_000, 384, 24, 500, 200, 10


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_corpus(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Documents and queries with the low intrinsic dimension of sentence embeddings: topics in a
    small latent space, projected to 384 dimensions, plus a little isotropic noise."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((TOPICS, LATENT))
    projection = rng.standard_normal((LATENT, DIMENSION)) / np.sqrt(LATENT)

    def sample(count: int) -> np.ndarray:
        latent = topics[rng.integers(0, TOPICS, count)] + 0.6 * rng.standard_normal((count, LATENT))
        return unit(latent @ projection + 0.05 * rng.standard_normal((count, DIMENSION)))

    return sample(DOCUMENTS), sample(QUERIES)


async def load(connection: asyncpg.Connection, collection_id: int, model, vectors: np.ndarray) -> None:
    records = [
        (
            collection_id,
            f"doc-{index}",
            f"synthetic document {index}",
            text_digest(f"synthetic document {index}"),
            "{}",
            1,
            [],
            "benchmark",
            "",
            model.id,
            model.version,
            vector,
        )
        for index, vector in enumerate(vectors)
    ]
    await connection.copy_records_to_table(
        "embedding_documents",
        records=records,
        columns=[
            "collection_id",
            "external_id",
            "text",
            "text_sha256",
            "metadata",
            "data_class",
            "consented_purposes",
            "source",
            "subject_id",
            "model_id",
            "model_version",
            "embedding",
        ],
    )


async def test_search_recall_and_latency_against_raw_asyncpg(embedding_server, postgres_url, connect, tenant):
    documents, queries = synthetic_corpus()
    stub = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(embedding_server, tenant, roles=("analyst", "operator", "admin"))
    )
    created = await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name="bench"))
    model = created.collection.model

    raw = await asyncpg.connect(postgres_url, server_settings=SEARCH_SERVER_SETTINGS)
    await register_vector(raw)
    try:
        collection_id = await raw.fetchval(
            "SELECT id FROM embedding_collections WHERE tenant = $1 AND name = 'bench'", tenant
        )
        started = time.perf_counter()
        await raw.execute(f"DROP INDEX embedding_documents_hnsw_{collection_id}")
        await load(raw, collection_id, model, documents)
        await raw.execute("SET maintenance_work_mem = '1GB'")
        await raw.execute(collection_index_ddl(collection_id, DIMENSION))
        await raw.execute("ANALYZE embedding_documents")
        print(f"\nloaded {DOCUMENTS} vectors and built their HNSW index: {time.perf_counter() - started:.0f}s")

        exact = np.argsort(-(queries @ documents.T), axis=1)[:, :TOP_K]
        expected = [{f"doc-{index}" for index in row} for row in exact]

        raw_sql = (
            f"SELECT external_id FROM embedding_documents WHERE collection_id = $2 "
            f"ORDER BY embedding::vector({DIMENSION}) <=> $1 LIMIT {TOP_K}"
        )
        plan = "\n".join(row[0] for row in await raw.fetch("EXPLAIN " + raw_sql, queries[0], collection_id))
        assert f"embedding_documents_hnsw_{collection_id}" in plan, plan

        async def raw_search(query):
            return [row["external_id"] for row in await raw.fetch(raw_sql, query, collection_id)]

        async def service_search(query):
            reply = await stub.Search(
                embedding_pb2.SearchRequest(
                    collection="bench", vector=embedding_pb2.Embedding(values=query.tolist()), top_k=TOP_K
                )
            )
            return [result.id for result in reply.results]

        for query in queries[:20]:  # warm both paths and the index pages
            await raw_search(query)
            await service_search(query)

        raw_times, service_times, raw_recall, service_recall = [], [], [], []
        for query, truth in zip(queries, expected, strict=True):  # interleaved, so noise hits both alike
            for search, times, recalls in (
                (raw_search, raw_times, raw_recall),
                (service_search, service_times, service_recall),
            ):
                started = time.perf_counter()
                found = await search(query)
                times.append(time.perf_counter() - started)
                recalls.append(len(truth & set(found)) / TOP_K)
    finally:
        await stub.DeleteCollection(embedding_pb2.DeleteCollectionRequest(name="bench"))
        await raw.close()

    raw_p50, service_p50 = statistics.median(raw_times) * 1000, statistics.median(service_times) * 1000
    print(
        f"search over {DOCUMENTS} vectors, {QUERIES} queries, top {TOP_K}:"
        f"\n  recall@{TOP_K}: service {np.mean(service_recall):.3f}, raw query {np.mean(raw_recall):.3f}"
        f"\n  p50 latency: service {service_p50:.2f} ms, raw asyncpg {raw_p50:.2f} ms, "
        f"ratio {service_p50 / raw_p50:.2f}"
    )
    assert np.mean(service_recall) >= 0.95
    assert service_p50 / raw_p50 <= 2.0
