"""Concurrent clients in a process of their own: `python -m tests.benchmarks.load_clients`.

Throughput benchmarks measure the services, not the client library: run in the benchmark's own process,
the clients' work would share one event loop (and one interpreter lock) with the service under test.
Prints the calls per second of CLIENTS concurrent clients making CALLS calls each, after a warm-up call each.
"""

import argparse
import asyncio
import json
import time

import aiohttp

from matcha.classification.v1 import classification_pb2, classification_pb2_grpc
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass

TEXT = "matcha latte with oat milk"
COLLECTION = "bench"
REVIEWS = [
    "The delivery was late and the box was crushed.",
    "Lovely roast, I will order again.",
    "Customer service answered within the hour.",
    "Too bitter for my taste.",
]
SENTIMENT = classification_pb2.ClassificationTask(sentiment=classification_pb2.SentimentTask())


async def _rate(call, clients: int, calls: int) -> float:
    async def client() -> None:
        for _ in range(calls):
            await call()

    await asyncio.gather(*(call() for _ in range(clients)))  # warm-up: every connection open
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return clients * calls / (time.perf_counter() - started)


async def http_rate(url: str, token: str, method: str, clients: int, calls: int) -> float:
    headers = {"authorization": f"Bearer {token}", "x-matcha-purpose": "campaign", "x-matcha-data-class": "INTERNAL"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector) as session:

        async def call() -> None:
            request = (
                session.post("/v1/embeddings:embed", json={"texts": [TEXT]})
                if method == "Embed"
                else session.get(f"/v1/collections/{COLLECTION}")
            )
            async with request as reply:
                assert reply.status == 200, await reply.text()
                await reply.read()

        return await _rate(call, clients, calls)


async def grpc_rate(target: str, token: str, method: str, clients: int, calls: int) -> float:
    async with open_channel(target, token=token, purpose="campaign", data_class=DataClass.INTERNAL) as channel:
        embedding = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        classification = classification_pb2_grpc.ClassificationServiceStub(channel)
        if method == "Search":  # by vector, so the call measures the service and the index, not the model
            query = (await embedding.Embed(embedding_pb2.EmbedRequest(texts=[TEXT]))).embeddings[0]
        calls_by_method = {
            "Embed": lambda: embedding.Embed(embedding_pb2.EmbedRequest(texts=[TEXT])),
            "GetCollection": lambda: embedding.GetCollection(embedding_pb2.GetCollectionRequest(name=COLLECTION)),
            "Search": lambda: embedding.Search(
                embedding_pb2.SearchRequest(collection=COLLECTION, vector=query, top_k=10)
            ),
            "Classify": lambda: classification.Classify(
                classification_pb2.ClassifyRequest(texts=REVIEWS, tasks=[SENTIMENT])
            ),
        }
        make_call = calls_by_method[method]

        async def call() -> None:
            await make_call()

        return await _rate(call, clients, calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["http", "grpc"])
    parser.add_argument("target", help="gateway base URL (http) or host:port (grpc)")
    parser.add_argument("method", choices=["Embed", "GetCollection", "Search", "Classify"])
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--calls", type=int, default=40)
    arguments = parser.parse_args()
    measure = http_rate if arguments.mode == "http" else grpc_rate
    rate = asyncio.run(measure(arguments.target, arguments.token, arguments.method, arguments.clients, arguments.calls))
    print(json.dumps({"calls_per_second": rate}))


if __name__ == "__main__":
    main()
