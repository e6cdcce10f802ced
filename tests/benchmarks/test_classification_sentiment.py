"""Sentiment quality against VADER on held-out real reviews, and throughput through the service.

Quality: the Rotten Tomatoes critics' snippets and plot summaries of the movies the shipped
head never saw (`datasets.is_held_out`), classified through the service, next to VADER
(vaderSentiment 3.3.2, its own lexicon) on the same texts. Target: macro-F1 at least 0.05 above VADER's.

Throughput: 8 concurrent clients sending 16 texts per call reach at least 0.9x the in-process
pipeline (language detection, MiniLM in batches of 64, the head) on the same texts, same run.
"""

import asyncio
import statistics
import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from matcha.classification import datasets
from matcha.classification.app import build_classification_service
from matcha.classification.language import LanguageDetector
from matcha.classification.sentiment import SentimentAnalyzer
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc

pytestmark = pytest.mark.bench

CLIENTS, TEXTS_PER_CALL, BASELINE_BATCH, ROUNDS = 8, 16, 64, 3
SENTIMENT = pb.ClassificationTask(sentiment=pb.SentimentTask())
NAMES = {pb.SENTIMENT_NEGATIVE: "negative", pb.SENTIMENT_NEUTRAL: "neutral", pb.SENTIMENT_POSITIVE: "positive"}


@pytest.fixture
async def stub(postgres_url, state_dir, serve, local_encoder, connect, tenant):
    settings = ClassificationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield classification_pb2_grpc.ClassificationServiceStub(connect(server, tenant))


async def classify_all(stub, texts: list[str]) -> list[pb.TextClassification]:
    results = []
    for start in range(0, len(texts), 128):
        reply = await stub.Classify(pb.ClassifyRequest(texts=texts[start : start + 128], tasks=[SENTIMENT]))
        results.extend(reply.results)
    return results


def vader_label(compound: float) -> str:
    # VADER's documented thresholds.
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def scores(truth, predicted) -> tuple[float, float]:
    return accuracy_score(truth, predicted), f1_score(truth, predicted, average="macro")


async def test_sentiment_beats_vader_on_held_out_reviews(stub):
    held_out = [item for item in datasets.rotten_tomatoes() if datasets.is_held_out(item)]
    texts, truth = [item.text for item in held_out], [item.label for item in held_out]
    results = await classify_all(stub, texts)
    ours_3 = [NAMES[result.sentiment.label] for result in results]
    vader = SentimentIntensityAnalyzer()
    compounds = [vader.polarity_scores(text)["compound"] for text in texts]
    vader_3 = [vader_label(compound) for compound in compounds]

    # Two-class view, on the reviews only: each system's positive-vs-negative decision.
    polar = [index for index, label in enumerate(truth) if label != "neutral"]
    truth_2 = [truth[i] for i in polar]
    ours_2 = [
        "positive" if results[i].sentiment.positive >= results[i].sentiment.negative else "negative" for i in polar
    ]
    vader_2 = ["positive" if compounds[i] >= 0 else "negative" for i in polar]

    figures = {
        "ours, 3 classes": scores(truth, ours_3),
        "VADER, 3 classes": scores(truth, vader_3),
        "ours, fresh/rotten": scores(truth_2, ours_2),
        "VADER, fresh/rotten": scores(truth_2, vader_2),
    }
    languages = {language: sum(r.language == language for r in results) for language in ("en", "fr")}
    print(
        f"\nsentiment on {len(texts)} held-out texts ({len(polar)} reviews, {len(texts) - len(polar)} plots);"
        f" detected languages {languages}, others {len(texts) - sum(languages.values())}"
    )
    for name, (accuracy, macro_f1) in figures.items():
        print(f"  {name:22s} accuracy {accuracy:.3f}  macro-F1 {macro_f1:.3f}")
    assert figures["ours, 3 classes"][1] >= figures["VADER, 3 classes"][1] + 0.05
    assert figures["ours, fresh/rotten"][1] >= figures["VADER, fresh/rotten"][1] + 0.05


def in_process_rate(encoder, detector: LanguageDetector, analyzer: SentimentAnalyzer, texts: list[str]) -> float:
    """The same pipeline called directly, in calls of 64 texts."""
    started = time.perf_counter()
    for start in range(0, len(texts), BASELINE_BATCH):
        batch = texts[start : start + BASELINE_BATCH]
        languages = [detector.detect(text).code for text in batch]
        analyzer.score(batch, languages, np.asarray(encoder.encode_now(batch, forward_batch_size=BASELINE_BATCH)))
    return len(texts) / (time.perf_counter() - started)


async def service_rate(stub, texts: list[str]) -> float:
    calls = [texts[start : start + TEXTS_PER_CALL] for start in range(0, len(texts), TEXTS_PER_CALL)]

    async def client(index: int) -> None:
        for call in calls[index::CLIENTS]:
            reply = await stub.Classify(pb.ClassifyRequest(texts=call, tasks=[SENTIMENT]))
            assert len(reply.results) == len(call)

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(CLIENTS)))
    return len(texts) / (time.perf_counter() - started)


async def test_sentiment_throughput_matches_the_in_process_model(stub, local_encoder):
    reviews = [item.text for item in datasets.rotten_tomatoes() if item.label != "neutral"][:512]
    detector, analyzer = LanguageDetector(), SentimentAnalyzer()
    await service_rate(stub, reviews[:128])  # warm-up
    in_process_rate(local_encoder, detector, analyzer, reviews[:128])
    baseline, service = [], []
    for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
        baseline.append(await asyncio.to_thread(in_process_rate, local_encoder, detector, analyzer, reviews))
        service.append(await service_rate(stub, reviews))
    baseline_rate, service_rate_ = statistics.median(baseline), statistics.median(service)
    print(
        f"\nsentiment throughput ({len(reviews)} review snippets, median of {ROUNDS}):"
        f"\n  in-process pipeline, batch {BASELINE_BATCH}: {baseline_rate:.0f} texts/s"
        f"\n  service, {CLIENTS} clients x {TEXTS_PER_CALL} texts per call: {service_rate_:.0f} texts/s"
        f"\n  ratio: {service_rate_ / baseline_rate:.2f}"
    )
    assert service_rate_ / baseline_rate >= 0.9
