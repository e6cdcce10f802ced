"""Classify through the real service: sentiment on real held-out reviews, French, zero-shot topics."""

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from matcha.classification import datasets
from matcha.classification.sentiment import ENGLISH_MODEL_ID, FRENCH_MODEL_ID
from matcha.classification.train_sentiment import HEAD_VERSION
from matcha.classification.v1 import classification_pb2 as pb

SENTIMENT = pb.ClassificationTask(sentiment=pb.SentimentTask())
NAMES = {pb.SENTIMENT_NEGATIVE: "negative", pb.SENTIMENT_NEUTRAL: "neutral", pb.SENTIMENT_POSITIVE: "positive"}


@pytest.fixture(scope="module")
def held_out_reviews() -> list[datasets.LabelledText]:
    """Critics' snippets of movies the shipped head never saw, fresh and rotten alternating."""
    reviews = [item for item in datasets.rotten_tomatoes() if datasets.is_held_out(item) and item.label != "neutral"]
    positive = [item for item in reviews if item.label == "positive"][:64]
    negative = [item for item in reviews if item.label == "negative"][:64]
    return [item for pair in zip(positive, negative, strict=True) for item in pair]


async def classify(stub, texts, *tasks, language=""):
    return await stub.Classify(pb.ClassifyRequest(texts=texts, tasks=list(tasks), language=language))


async def test_sentiment_on_held_out_reviews_beats_the_lexicon(stub, held_out_reviews):
    predicted = []
    for start in range(0, len(held_out_reviews), 64):
        reply = await classify(stub, [item.text for item in held_out_reviews[start : start + 64]], SENTIMENT)
        for result in reply.results:
            sentiment = result.sentiment
            assert sentiment.negative + sentiment.neutral + sentiment.positive == pytest.approx(1.0, abs=1e-4)
            # Reviews are polar: compare the two polarities, as the benchmark does.
            predicted.append("positive" if sentiment.positive >= sentiment.negative else "negative")
    truth = [item.label for item in held_out_reviews]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    vader = SentimentIntensityAnalyzer()
    vader_predicted = [
        "positive" if vader.polarity_scores(item.text)["compound"] >= 0 else "negative" for item in held_out_reviews
    ]
    vader_accuracy = sum(p == t for p, t in zip(vader_predicted, truth, strict=True)) / len(truth)
    # 0.66 against VADER's 0.57 on these 128 when this was written (the full held-out set is in the benchmark).
    assert accuracy >= 0.62
    assert accuracy >= vader_accuracy + 0.05


CUSTOMER_TEXTS = [
    ("Never had a problem with them: every order arrived on time and support answered within the hour.", "positive"),
    ("The app keeps crashing and nobody answers my emails. Cancelling my subscription.", "negative"),
    ("I wouldn't recommend this blender to anyone, it broke after two weeks.", "negative"),
    ("Not bad at all, actually pretty good value.", "positive"),
    ("The delivery was late but the product itself is great.", "positive"),
    ("Great product, fast delivery.", "positive"),
    ("Terrible customer service, never again.", "negative"),
    ("I received the parcel on Tuesday.", "neutral"),
    ("Nothing to complain about, the refund came through quickly.", "positive"),
    ("Honestly not worth the money.", "negative"),
]


async def test_customer_text_with_negations_and_the_model_used(stub):
    reply = await classify(stub, [text for text, _ in CUSTOMER_TEXTS], SENTIMENT)
    predicted = [NAMES[result.sentiment.label] for result in reply.results]
    correct = sum(guess == label for guess, (_, label) in zip(predicted, CUSTOMER_TEXTS, strict=True))
    # 6 of 10 when this was written: negated complaints ("never had a problem") still read as negative.
    assert correct >= 6, predicted
    for result in reply.results:
        assert result.language == "en"
        assert 0.3 < result.language_confidence <= 1.0
        assert result.sentiment.model.id == ENGLISH_MODEL_ID
        assert result.sentiment.model.version.startswith(f"{HEAD_VERSION}+sha256.")
        assert result.sentiment.model.version.endswith("+vader.3.3.2")
    model_ids = [model.id for model in reply.models]
    assert model_ids == ["sentence-transformers/all-MiniLM-L6-v2", ENGLISH_MODEL_ID]


async def test_french_is_detected_and_scored_by_the_french_lexicon(stub):
    texts = [
        "Livraison en retard, colis abîmé et service client injoignable. Très déçu.",
        "Produit excellent, livraison rapide, je recommande vivement cette boutique !",
        "Great product, fast delivery.",
    ]
    reply = await classify(stub, texts, SENTIMENT)
    languages = [result.language for result in reply.results]
    assert languages == ["fr", "fr", "en"]
    assert [NAMES[result.sentiment.label] for result in reply.results] == ["negative", "positive", "positive"]
    assert [result.sentiment.model.id for result in reply.results] == [
        FRENCH_MODEL_ID,
        FRENCH_MODEL_ID,
        ENGLISH_MODEL_ID,
    ]
    assert {model.id for model in reply.models} >= {FRENCH_MODEL_ID, ENGLISH_MODEL_ID}


async def test_given_language_skips_detection(stub):
    reply = await classify(stub, ["Ce produit est nul."], SENTIMENT, language="fr")
    (result,) = reply.results
    assert (result.language, result.language_confidence) == ("fr", 1.0)
    assert result.sentiment.model.id == FRENCH_MODEL_ID
    assert result.sentiment.label == pb.SENTIMENT_NEGATIVE


def topics_task(threshold=None, single_label=False):
    labels = [
        pb.TopicLabel(name="delivery", description="late, lost or damaged parcels and shipping"),
        pb.TopicLabel(name="price", description="cost, expensive, discounts and refunds"),
        pb.TopicLabel(
            name="support",
            description="customer service agents and help desk",
            examples=["Nobody answered my call", "The agent on the chat was very helpful"],
        ),
    ]
    topics = pb.TopicsTask(labels=labels, single_label=single_label)
    if threshold is not None:
        topics.threshold = threshold
    return pb.ClassificationTask(topics=topics)


async def test_zero_shot_topics(stub):
    texts = [
        "My parcel arrived two weeks late and the box was crushed.",
        "Way too expensive for what you get, and no discount for loyal customers.",
        "I waited forty minutes on the phone before someone at the help desk picked up.",
    ]
    reply = await classify(stub, texts, topics_task())
    for expected, result in zip(["delivery", "price", "support"], reply.results, strict=True):
        scores = {label.label: label for label in result.topics.labels}
        assert [label.label for label in result.topics.labels] == ["delivery", "price", "support"]
        assert max(scores.values(), key=lambda label: label.score).label == expected
        assert scores[expected].assigned
        for label in result.topics.labels:
            assert 0.0 <= label.score <= 1.0
            assert label.assigned == (label.score >= 0.5)


async def test_topic_threshold_and_single_label(stub):
    text = ["The courier lost my package and the refund still has not arrived."]
    everything = await classify(stub, text, topics_task(threshold=0.0))
    assert all(label.assigned for label in everything.results[0].topics.labels)
    single = await classify(stub, text, topics_task(threshold=0.0, single_label=True))
    labels = single.results[0].topics.labels
    assert sum(label.assigned for label in labels) == 1
    assert max(labels, key=lambda label: label.score).assigned
    nothing = await classify(stub, text, topics_task(threshold=1.0))
    assert not any(label.assigned for label in nothing.results[0].topics.labels)
