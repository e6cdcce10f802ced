"""Sentiment on customer messages with negations and mixed feelings, where a head on embeddings is blind.

The negation rules were designed on other sentences; these twenty were written apart, as customers
write: negated complaints ("never had any trouble"), negated praise ("wasn't helpful"), and mixed
messages. Before the rules the service got 11 of them right (negated complaints read as negative).
"""

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from matcha.classification.sentiment import NegationScopes
from matcha.classification.v1 import classification_pb2 as pb

NAMES = {pb.SENTIMENT_NEGATIVE: "negative", pb.SENTIMENT_NEUTRAL: "neutral", pb.SENTIMENT_POSITIVE: "positive"}
CUSTOMER_MESSAGES = [
    ("I've never had any trouble with my orders from this shop.", "positive"),
    ("Not once did the package arrive late.", "positive"),
    ("The checkout was not complicated at all.", "positive"),
    ("There was nothing wrong with the jacket, it fits perfectly.", "positive"),
    ("I can't recommend this bakery enough.", "positive"),
    ("Couldn't ask for a better service.", "positive"),
    ("The app is not bad, it does what it says.", "positive"),
    ("Setup wasn't difficult, took ten minutes.", "positive"),
    ("No problems with the battery so far, it lasts all day.", "positive"),
    ("Honestly can't fault a single thing about our stay.", "positive"),
    ("The new recipe is not as good as the old one.", "negative"),
    ("Customer service wasn't helpful at all.", "negative"),
    ("Not impressed with the build quality.", "negative"),
    ("The refund never arrived and nobody replied to my emails.", "negative"),
    ("Nothing special, and overpriced for what it is.", "negative"),
    ("The room didn't look anything like the photos.", "negative"),
    ("The food was good, but the service was painfully slow.", "negative"),
    ("Delivery took a while, but the quality is excellent and I'm glad I waited.", "positive"),
    ("The staff were polite, although nobody could actually solve my problem.", "negative"),
    ("I don't like the new packaging, it's impossible to open.", "negative"),
]


async def test_negated_and_mixed_customer_messages(stub):
    texts = [text for text, _ in CUSTOMER_MESSAGES]
    reply = await stub.Classify(
        pb.ClassifyRequest(texts=texts, tasks=[pb.ClassificationTask(sentiment=pb.SentimentTask())])
    )
    predicted = [NAMES[result.sentiment.label] for result in reply.results]
    # The rules are part of the model the audit ledger records.
    assert "+negation.1+vader." in reply.results[0].sentiment.model.version
    wrong = [(text, guess) for (text, label), guess in zip(CUSTOMER_MESSAGES, predicted, strict=True) if guess != label]
    # 16 of 20 when the rules were added (11 before); the misses are listed in docs/classification.md.
    assert len(CUSTOMER_MESSAGES) - len(wrong) >= 15, wrong
    # The first ten are negated complaints: 1 read positive before the rules, 6 with them.
    assert predicted[:10].count("positive") >= 5, predicted[:10]


@pytest.fixture(scope="module")
def scopes() -> NegationScopes:
    return NegationScopes(SentimentIntensityAnalyzer().lexicon)


@pytest.mark.parametrize(
    ("text", "polarity"),
    [
        ("Never had a problem with them.", "positive"),
        ("Nothing to complain about.", "positive"),
        ("Couldn't be happier with my new sofa.", "positive"),
        ("We can't thank them enough.", "positive"),
        ("Not worth the money.", "negative"),
        ("It doesn't work.", "negative"),
        ("Never again.", "negative"),
        ("Couldn't be worse.", "negative"),
    ],
)
def test_negated_phrases(scopes, text, polarity):
    found = scopes.measure(text)
    assert found.share == 1.0  # every polar word of these is under the negation
    negative, neutral, positive = found.shares()
    assert neutral == 0.0
    assert (positive if polarity == "positive" else negative) == 1.0


def test_what_is_not_a_negation(scopes):
    plain = scopes.measure("Great product, fast delivery.")
    assert (plain.share, plain.other > 0) == (0.0, True)
    # "not only ... but": praise, not negated; a negation stops at the clause's end.
    assert scopes.measure("Not only cheap but also good.").share == 0.0
    split = scopes.measure("It's not cheap, but the quality is excellent.")
    assert split.positive == split.negative == 0.0
    # Half the polar mass is negated: the head keeps the other half of the decision.
    half = scopes.measure("Not bad, bad.")
    assert half.share == pytest.approx(0.5)
