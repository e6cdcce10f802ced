"""Recommendation quality on MovieLens-100k (943 users, 1,682 films, 100,000 ratings; shipped inside the
`recbole` wheel), leave-last-out: each user's latest rating is held out, the rest is the history.

Through the service: the histories are ingested as transactions, the films as items with their genres
as vectors, the users get their genre shares as caller features, a k-means segmentation is built on
them, and `Recommend` ranks 10 films per user. Against global popularity (the films most users rated,
the user's own excluded), the recommender must do better on hit-rate@10 and NDCG@10. The same figures
are computed by the scoring core on arrays (`recommend.evidence_from_history`) with the service's own
segments: the two must rank alike, and the core gives the contribution of each signal alone.
"""

import asyncio
import math
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from google.protobuf import timestamp_pb2

from matcha.cli.records import packaged_file
from matcha.common.v1 import common_pb2
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.recommend import Weights, evidence_from_history, recommend
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc

pytestmark = pytest.mark.bench

ML100K = "recbole/dataset_example/ml-100k/ml-100k"
POLICY = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
K, SEED, CUTOFF = 8, 0, 10
# Users asked through the service (a seeded sample when fewer than all 943); the core ranks every user.
SERVICE_USERS = int(os.environ.get("MATCHA_BENCH_RECOMMEND_USERS", "943"))
GENRE_MODEL = common_pb2.ModelRef(id="movielens-genres", version="1")


def read_tsv(suffix: str) -> list[list[str]]:
    lines = packaged_file("recbole", f"{ML100K}.{suffix}").read_text(encoding="latin-1").splitlines()
    return [line.split("\t") for line in lines[1:]]


def load_movielens():
    """(ratings as (user, item, time) sorted by user then time then item, films with (title, genres))."""
    ratings = sorted(
        ((user, item, float(when)) for user, item, _, when in read_tsv("inter")),
        key=lambda rating: (int(rating[0]), rating[2], rating[1]),
    )
    films = {item: (title, genres.split()) for item, title, _, genres in read_tsv("item")}
    return ratings, films


def leave_last_out(ratings):
    history, held_out = [], {}
    for position, rating in enumerate(ratings):
        is_last = position + 1 == len(ratings) or ratings[position + 1][0] != rating[0]
        if is_last:
            held_out[rating[0]] = rating[1]
        else:
            history.append(rating)
    return history, held_out


def feature_name(genre: str) -> str:
    """A caller feature name per genre: "Sci-Fi" -> "genre_sci_fi"."""
    return "genre_" + genre.lower().replace("-", "_").replace("'", "")


def hit_and_gain(ranked: list[str], target: str) -> tuple[float, float]:
    if target in ranked[:CUTOFF]:
        return 1.0, 1.0 / math.log2(ranked.index(target) + 2)
    return 0.0, 0.0


@pytest.fixture(scope="module")
async def server(postgres_url, state_dir, serve):
    settings = SegmentationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_segmentation_service(settings), settings) as running:
        yield running


async def test_recommendations_beat_global_popularity(server, connect, tenant):
    ratings, films = load_movielens()
    history, held_out = leave_last_out(ratings)
    genres = sorted({genre for _, names in films.values() for genre in names})
    users = sorted(held_out, key=int)

    seen: dict[str, list[str]] = {}
    for user, item, _ in history:
        seen.setdefault(user, []).append(item)
    shares = {user: dict.fromkeys(map(feature_name, genres), 0.0) for user in users}
    for user, items in seen.items():
        counts = Counter(genre for item in items for genre in films[item][1])
        for genre, count in counts.items():
            shares[user][feature_name(genre)] = count / len(items)

    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
    started = time.perf_counter()
    await stub.IngestCustomers(
        pb.IngestCustomersRequest(
            customers=[pb.Customer(id=user, features=shares[user], policy=POLICY) for user in users]
        )
    )
    transactions = [
        pb.Transaction(id=f"ml-{number}", customer_id=user, item_id=item, amount=1.0, time=_timestamp(when))
        for number, (user, item, when) in enumerate(history)
    ]
    for start in range(0, len(transactions), 50_000):
        await stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=transactions[start : start + 50_000]))
    items = []
    for item, (title, names) in films.items():
        film = pb.Item(id=item, name=title, category=names[0] if names else "")
        if names:  # a film without genre has no vector (an all-zero one is refused)
            film.vector.extend(1.0 if genre in names else 0.0 for genre in genres)
            film.vector_model.CopyFrom(GENRE_MODEL)
        items.append(film)
    await stub.IngestItems(pb.IngestItemsRequest(items=items))
    features = sorted(shares[users[0]])
    built = await stub.BuildSegmentation(
        pb.BuildSegmentationRequest(name="taste", features=features, kmeans=pb.KMeansConfig(k=K), seed=SEED),
        timeout=600,
    )
    setup_seconds = time.perf_counter() - started

    started = time.perf_counter()
    service_ranked: dict[str, list[str]] = {}
    asked = sorted(random.Random(SEED).sample(users, min(SERVICE_USERS, len(users))), key=int)
    for user in asked:
        reply = await stub.Recommend(pb.RecommendRequest(customer_id=user, segmentation="taste", limit=CUTOFF))
        service_ranked[user] = [recommendation.item_id for recommendation in reply.recommendations]
    recommend_seconds = time.perf_counter() - started

    # The service's own segments, for the core on arrays.
    segment_of: dict[str, int] = {}
    for position, segment in enumerate(built.segmentation.segments):
        token = ""
        while True:
            page = await stub.ListSegmentMembers(
                pb.ListSegmentMembersRequest(name="taste", segment_id=segment.id, page_size=1000, page_token=token)
            )
            segment_of.update({member.customer_id: position for member in page.members})
            token = page.next_page_token
            if not token:
                break

    item_ids = sorted(films, key=int)
    item_index = {item: index for index, item in enumerate(item_ids)}
    user_index = {user: index for index, user in enumerate(users)}
    customers = np.array([user_index[user] for user, _, _ in history])
    item_indices = np.array([item_index[item] for _, item, _ in history])
    times = np.array([when for _, _, when in history])
    segments = np.array([segment_of.get(user, -1) for user in users])
    vectors = np.array([[1.0 if genre in films[item][1] else 0.0 for genre in genres] for item in item_ids])
    vectors[~vectors.any(axis=1)] = np.nan

    variants = {
        "segment popularity only": Weights(co_occurrence=0.0, content=0.0),
        "co-occurrence only": Weights(popularity=0.0, content=0.0),
        "content similarity only": Weights(popularity=0.0, co_occurrence=0.0),
        "combined (defaults)": Weights(),
    }

    def core_rankings() -> dict[str, dict[str, list[str]]]:
        rankings: dict[str, dict[str, list[str]]] = {name: {} for name in variants}
        for user in users:
            evidence = evidence_from_history(
                item_ids, customers, item_indices, times, segments, user_index[user], vectors
            )
            for name, weights in variants.items():
                scored = recommend(evidence, ~evidence.owned, CUTOFF, weights)
                rankings[name][user] = [item_ids[item.index] for item in scored]
        return rankings

    started = time.perf_counter()
    core = await asyncio.to_thread(core_rankings)
    core_seconds = time.perf_counter() - started

    popularity = Counter(item for _, item, _ in history)
    by_popularity = sorted(popularity, key=lambda item: (-popularity[item], int(item)))
    owned = {user: set(items) for user, items in seen.items()}

    def baseline(user: str) -> list[str]:
        return [item for item in by_popularity if item not in owned[user]][:CUTOFF]

    def figures(ranked: dict[str, list[str]], among: list[str]) -> tuple[float, float]:
        pairs = [hit_and_gain(ranked[user], held_out[user]) for user in among]
        return sum(hit for hit, _ in pairs) / len(among), sum(gain for _, gain in pairs) / len(among)

    baseline_ranked = {user: baseline(user) for user in users}
    results = {"global popularity (baseline)": figures(baseline_ranked, users)}
    results |= {f"core: {name}": figures(ranked, users) for name, ranked in core.items()}
    sample = f"{len(asked)} users" if len(asked) < len(users) else "every user"
    results[f"baseline on the service's {sample}"] = figures(baseline_ranked, asked)
    results[f"service Recommend, {sample}"] = figures(service_ranked, asked)
    same = sum(service_ranked[user] == core["combined (defaults)"][user] for user in asked)
    print(
        f"\nSEGMENTATION_RECOMMEND MovieLens-100k, {len(users)} users, {len(item_ids)} films, "
        f"{len(history)} history ratings, k={K} segments; setup {setup_seconds:.1f}s, "
        f"{len(asked)} Recommend calls in {recommend_seconds:.1f}s "
        f"({recommend_seconds / len(asked) * 1000:.0f} ms each), "
        f"core {core_seconds:.1f}s; service and core rank alike for {same}/{len(asked)} users"
    )
    for name, (hit_rate, ndcg) in results.items():
        print(f"  {name:<38} hit-rate@10 {hit_rate:.4f}  NDCG@10 {ndcg:.4f}")

    base_hit, base_ndcg = results["global popularity (baseline)"]
    core_hit, core_ndcg = results["core: combined (defaults)"]
    assert core_hit > base_hit and core_ndcg > base_ndcg
    sample_hit, sample_ndcg = results[f"baseline on the service's {sample}"]
    service_hit, service_ndcg = results[f"service Recommend, {sample}"]
    assert service_hit > sample_hit and service_ndcg > sample_ndcg
    # pgvector computes cosines in float32, the core in float64: a near tie may fall the other way.
    assert same >= 0.99 * len(asked)


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(datetime.fromtimestamp(seconds, UTC))
    return message
