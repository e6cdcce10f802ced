"""Linear heads on sentence embeddings: training, inference, serialisation and metrics.

Plain numpy and scikit-learn; CPU-bound functions here are run off the event loop by the core.
"""

import io
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

METHOD = "logistic-regression-on-embeddings"
# Inverse regularisation strength: unit-norm embeddings need a weak penalty to separate classes.
REGULARISATION_C = 10.0


@dataclass(frozen=True)
class LabelQuality:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    example_count: int
    accuracy: float
    macro_f1: float
    per_label: list[LabelQuality]
    # Rows are true labels, columns predicted labels, both in `labels` order.
    labels: list[str]
    confusion: list[list[int]]

    def to_json(self) -> dict:
        return {
            "example_count": self.example_count,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_label": [quality.__dict__ for quality in self.per_label],
            "labels": self.labels,
            "confusion": self.confusion,
        }

    @classmethod
    def from_json(cls, value: dict) -> "Metrics":
        return cls(
            example_count=value["example_count"],
            accuracy=value["accuracy"],
            macro_f1=value["macro_f1"],
            per_label=[LabelQuality(**quality) for quality in value["per_label"]],
            labels=value["labels"],
            confusion=value["confusion"],
        )


def measure(true_labels: list[str], predicted_labels: list[str], labels: list[str]) -> Metrics:
    precision, recall, f1, support = precision_recall_fscore_support(
        true_labels, predicted_labels, labels=labels, zero_division=0
    )
    matrix = confusion_matrix(true_labels, predicted_labels, labels=labels)
    correct = sum(truth == guess for truth, guess in zip(true_labels, predicted_labels, strict=True))
    # Macro-F1 over the labels present in the evaluated set: an absent label has no F1 to average.
    present = [index for index, count in enumerate(support) if count > 0]
    return Metrics(
        example_count=len(true_labels),
        accuracy=correct / len(true_labels),
        macro_f1=float(np.mean([f1[index] for index in present])),
        per_label=[
            LabelQuality(label, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
        ],
        labels=list(labels),
        confusion=matrix.astype(int).tolist(),
    )


@dataclass(frozen=True)
class LinearHead:
    """Softmax over `weights @ x + bias`; one row per label."""

    labels: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exponentials = np.exp(logits)
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.labels[index] for index in self.probabilities(features).argmax(axis=1)]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, labels=np.array(self.labels), weights=self.weights, bias=self.bias)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinearHead":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(tuple(str(label) for label in arrays["labels"]), arrays["weights"], arrays["bias"])


def fit_head(features: np.ndarray, labels: list[str], *, seed: int) -> LinearHead:
    model = LogisticRegression(C=REGULARISATION_C, max_iter=2000, random_state=seed)
    model.fit(features, labels)
    weights, bias = model.coef_, model.intercept_
    if weights.shape[0] == 1:
        # Binary: scikit-learn keeps one logit; split it in two so that the softmax equals its sigmoid.
        weights = np.vstack([-weights[0] / 2, weights[0] / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2])
    labels = tuple(str(label) for label in model.classes_)
    return LinearHead(labels, weights.astype(np.float32), bias.astype(np.float32))


@dataclass(frozen=True)
class TrainedHead:
    head: LinearHead
    holdout: Metrics


def train_with_holdout(features: np.ndarray, labels: list[str], *, holdout_fraction: float, seed: int) -> TrainedHead:
    """Stratified split; the stored head is the one measured, trained without the holdout."""
    label_count = len(set(labels))
    holdout_size = min(max(label_count, round(holdout_fraction * len(labels))), len(labels) - label_count)
    train_index, holdout_index = train_test_split(
        np.arange(len(labels)), test_size=holdout_size, stratify=labels, random_state=seed % 2**32
    )
    head = fit_head(features[train_index], [labels[i] for i in train_index], seed=seed % 2**32)
    predicted = head.predict(features[holdout_index])
    holdout = measure([labels[i] for i in holdout_index], predicted, sorted(set(labels)))
    return TrainedHead(head, holdout)
