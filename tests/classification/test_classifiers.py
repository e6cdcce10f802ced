"""Custom classifiers: training on real labelled texts, versions, lineage, evaluation, listing, deletion."""

import hashlib
import json

import numpy as np
import pytest

from matcha.classification import datasets
from matcha.classification.v1 import classification_pb2 as pb
from matcha.runtime.governance import IDEMPOTENCY_KEY_HEADER

# A support team's own categories.
TICKETS = [
    ("t1", "I was charged twice for the same order", "billing"),
    ("t2", "Why is there an extra fee on my invoice?", "billing"),
    ("t3", "Please refund the payment you took by mistake", "billing"),
    ("t4", "My credit card was debited but the order was cancelled", "billing"),
    ("t5", "The parcel never arrived", "delivery"),
    ("t6", "Tracking says delivered but nothing is at my door", "delivery"),
    ("t7", "The courier left the box in the rain", "delivery"),
    ("t8", "Shipping took three weeks instead of three days", "delivery"),
]


def examples(rows):
    return [pb.LabeledExample(id=key, text=text, label=label) for key, text, label in rows]


@pytest.fixture(scope="module")
def reviews():
    """Real critics' snippets: training ones from the head's training movies, evaluation ones held out."""
    items = [item for item in datasets.rotten_tomatoes() if item.label != "neutral"]
    training = [item for item in items if not datasets.is_held_out(item)]
    held_out = [item for item in items if datasets.is_held_out(item)]

    def balanced(pool, count):
        positive = [item for item in pool if item.label == "positive"][: count // 2]
        negative = [item for item in pool if item.label == "negative"][: count // 2]
        return positive + negative

    return balanced(training, 300), balanced(held_out, 100)


def review_examples(items, prefix):
    return [pb.LabeledExample(id=f"{prefix}-{i}", text=item.text, label=item.label) for i, item in enumerate(items)]


async def test_train_on_real_reviews_then_classify_and_evaluate(stub, reviews):
    training, held_out = reviews
    reply = await stub.TrainClassifier(
        pb.TrainClassifierRequest(
            name="critics", description="fresh or rotten", examples=review_examples(training, "train"), seed=7
        )
    )
    classifier = reply.classifier
    assert (classifier.name, classifier.version, classifier.description) == ("critics", 1, "fresh or rotten")
    assert list(classifier.labels) == ["negative", "positive"]
    assert classifier.method == "calibrated-logistic-regression-on-embeddings+lexicon.1"
    assert (classifier.model.id, classifier.model.version) == ("matcha-classifier/critics", "1")
    holdout = classifier.holdout_metrics
    assert holdout.example_count == 60  # 20% of 300, stratified
    assert holdout.macro_f1 > 0.6
    assert sum(metric.support for metric in holdout.per_label) == 60
    assert list(holdout.confusion.labels) == ["negative", "positive"]
    assert sum(sum(row.counts) for row in holdout.confusion.rows) == 60
    correct = holdout.confusion.rows[0].counts[0] + holdout.confusion.rows[1].counts[1]
    assert holdout.accuracy == pytest.approx(correct / 60)

    evaluation = await stub.EvaluateClassifier(
        pb.EvaluateClassifierRequest(name="critics", examples=review_examples(held_out, "eval"))
    )
    assert evaluation.version == 1
    assert evaluation.model.id == "matcha-classifier/critics"
    assert evaluation.metrics.example_count == 100
    assert evaluation.metrics.macro_f1 > 0.6
    # 100 examples leave macro-F1 uncertain by several points either way; the interval says by how much.
    metrics = evaluation.metrics
    assert metrics.macro_f1_ci_low < metrics.macro_f1 < metrics.macro_f1_ci_high
    assert 0.05 < metrics.macro_f1_ci_high - metrics.macro_f1_ci_low < 0.4
    assert holdout.macro_f1_ci_low <= holdout.macro_f1 <= holdout.macro_f1_ci_high

    texts = ["A dazzling, heartfelt film: the best of the year.", "Dull, overlong and badly acted."]
    classified = await stub.Classify(
        pb.ClassifyRequest(texts=texts, tasks=[pb.ClassificationTask(custom=pb.CustomTask(classifier="critics"))])
    )
    predictions = [result.custom[0] for result in classified.results]
    assert [prediction.label for prediction in predictions] == ["positive", "negative"]
    for prediction in predictions:
        assert (prediction.classifier, prediction.version) == ("critics", 1)
        assert prediction.confidence == prediction.scores[0].score
        assert prediction.scores[0].assigned and not prediction.scores[1].assigned
        assert sum(score.score for score in prediction.scores) == pytest.approx(1.0, abs=1e-5)
    assert "matcha-classifier/critics" in [model.id for model in classified.models]


async def test_lineage_says_what_a_version_learned_from(stub):
    reply = await stub.TrainClassifier(pb.TrainClassifierRequest(name="tickets", examples=examples(TICKETS), seed=3))
    lineage = reply.classifier.lineage
    expected = hashlib.sha256()
    for key, text, label in sorted(TICKETS):
        expected.update(json.dumps([key, text, label]).encode() + b"\n")
    assert lineage.training_set_sha256 == expected.hexdigest()
    assert lineage.example_count == len(TICKETS)
    assert lineage.embedding_model.id == "sentence-transformers/all-MiniLM-L6-v2"
    assert lineage.train_subject == "user-1"
    assert lineage.seed == 3

    summary = await stub.GetClassifier(pb.GetClassifierRequest(name="tickets"))
    assert list(summary.classifier.lineage.example_ids) == []
    detailed = await stub.GetClassifier(pb.GetClassifierRequest(name="tickets", include_example_ids=True))
    assert sorted(detailed.classifier.lineage.example_ids) == [key for key, _, _ in TICKETS]

    # The same set in another order digests the same; ids default to the text's SHA-256.
    anonymous = [pb.LabeledExample(text=text, label=label) for _, text, label in reversed(TICKETS)]
    again = await stub.TrainClassifier(pb.TrainClassifierRequest(name="tickets", examples=anonymous))
    ids = await stub.GetClassifier(pb.GetClassifierRequest(name="tickets", version=2, include_example_ids=True))
    assert hashlib.sha256(TICKETS[0][1].encode()).hexdigest() in ids.classifier.lineage.example_ids
    assert again.classifier.version == 2
    assert again.classifier.lineage.training_set_sha256 != lineage.training_set_sha256


async def test_training_is_deterministic_for_a_seed(stub):
    first = await stub.TrainClassifier(pb.TrainClassifierRequest(name="a", examples=examples(TICKETS), seed=11))
    second = await stub.TrainClassifier(pb.TrainClassifierRequest(name="a", examples=examples(TICKETS), seed=11))
    assert second.classifier.version == first.classifier.version + 1
    assert second.classifier.holdout_metrics == first.classifier.holdout_metrics


async def test_idempotency_key_returns_the_same_version(stub):
    request = pb.TrainClassifierRequest(name="tickets", examples=examples(TICKETS))
    metadata = ((IDEMPOTENCY_KEY_HEADER, "run-1/train/0"),)
    first = await stub.TrainClassifier(request, metadata=metadata)
    retried = await stub.TrainClassifier(request, metadata=metadata)
    assert retried.classifier.version == first.classifier.version == 1
    listed = await stub.ListClassifiers(pb.ListClassifiersRequest(name="tickets"))
    assert [classifier.version for classifier in listed.classifiers] == [1]


async def test_versions_listing_paging_and_deletion(stub, stub_for, tenant):
    for name in ("beta", "alpha", "gamma"):
        await stub.TrainClassifier(pb.TrainClassifierRequest(name=name, examples=examples(TICKETS)))
    await stub.TrainClassifier(pb.TrainClassifierRequest(name="beta", examples=examples(TICKETS)))

    latest = await stub.ListClassifiers(pb.ListClassifiersRequest())
    assert [(c.name, c.version) for c in latest.classifiers] == [("alpha", 1), ("beta", 2), ("gamma", 1)]
    assert all(not c.holdout_metrics.confusion.rows and not c.lineage.example_ids for c in latest.classifiers)

    first_page = await stub.ListClassifiers(pb.ListClassifiersRequest(page_size=2))
    assert [c.name for c in first_page.classifiers] == ["alpha", "beta"]
    second_page = await stub.ListClassifiers(
        pb.ListClassifiersRequest(page_size=2, page_token=first_page.next_page_token)
    )
    assert [c.name for c in second_page.classifiers] == ["gamma"]
    assert second_page.next_page_token == ""

    versions = await stub.ListClassifiers(pb.ListClassifiersRequest(name="beta"))
    assert [c.version for c in versions.classifiers] == [2, 1]

    admin = stub_for(tenant, roles=("admin",))  # deleting classifiers is the tenant admin's
    deleted = await admin.DeleteClassifier(pb.DeleteClassifierRequest(name="beta", version=2))
    assert deleted.deleted_versions == 1
    assert (await stub.GetClassifier(pb.GetClassifierRequest(name="beta"))).classifier.version == 1
    # A deleted version number is never reused.
    retrained = await stub.TrainClassifier(pb.TrainClassifierRequest(name="beta", examples=examples(TICKETS)))
    assert retrained.classifier.version == 3
    everything = await admin.DeleteClassifier(pb.DeleteClassifierRequest(name="beta"))
    assert everything.deleted_versions == 2
    remaining = await stub.ListClassifiers(pb.ListClassifiersRequest())
    assert [c.name for c in remaining.classifiers] == ["alpha", "gamma"]


async def test_tenants_do_not_see_each_other(stub, stub_for):
    await stub.TrainClassifier(pb.TrainClassifierRequest(name="tickets", examples=examples(TICKETS)))
    stranger = stub_for("tenant-other")
    listed = await stranger.ListClassifiers(pb.ListClassifiersRequest())
    assert "tickets" not in [c.name for c in listed.classifiers]


def test_bootstrap_interval_matches_resampling_by_hand():
    """The vectorised interval equals scikit-learn's macro-F1 over the same resamples."""
    from sklearn.metrics import f1_score

    from matcha.classification.training import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_macro_f1

    truth = ["a"] * 30 + ["b"] * 15 + ["c"] * 5
    guess = ["a"] * 25 + ["b"] * 5 + ["b"] * 10 + ["c"] * 5 + ["c"] * 3 + ["a"] * 2
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(truth), size=(BOOTSTRAP_RESAMPLES, len(truth)))
    by_hand = []
    for draw in draws:
        sample_truth, sample_guess = [truth[i] for i in draw], [guess[i] for i in draw]
        present = sorted(set(sample_truth))
        by_hand.append(f1_score(sample_truth, sample_guess, labels=present, average="macro", zero_division=0))
    low, high = bootstrap_macro_f1(truth, guess, ["a", "b", "c"])
    assert (low, high) == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])))


def test_calibrated_head_weights_a_rare_label():
    """With one example in ten of a label, class weighting still predicts it; temperature keeps confidences sane."""
    from matcha.classification.training import fit_calibrated_head

    rng = np.random.default_rng(0)
    common = rng.normal(0.0, 1.0, size=(90, 8))
    rare = rng.normal(0.0, 1.0, size=(10, 8)) + np.array([1.2] + [0.0] * 7)
    features = np.vstack([common, rare])
    labels = ["common"] * 90 + ["rare"] * 10
    head = fit_calibrated_head(features, labels, seed=0)
    probe = rng.normal(0.0, 1.0, size=(200, 8)) + np.array([1.2] + [0.0] * 7)
    predicted = head.predict(probe)
    assert predicted.count("rare") > 60  # an unweighted head calls almost all of them common
    assert float(head.probabilities(probe).max(axis=1).mean()) < 0.95
