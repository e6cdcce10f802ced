"""Linear heads on sentence embeddings: training, inference, serialisation and metrics.

Plain numpy and scikit-learn; CPU-bound functions here are run off the event loop by the core.
"""

import io
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, train_test_split

# Versions trained before class weighting: embeddings only, fixed C, unweighted.
METHOD = "logistic-regression-on-embeddings"
# Class-weighted, C chosen by cross-validated macro-F1, temperature-calibrated, on the embedding
# followed by the text's lexicon features (`sentiment.lexicon_features`).
CALIBRATED_METHOD = "calibrated-logistic-regression-on-embeddings+lexicon.1"
# Inverse regularisation strength: unit-norm embeddings need a weak penalty to separate classes.
REGULARISATION_C = 10.0
# Candidates for the cross-validated C: few labels want a stronger penalty than many.
C_GRID = (0.5, 2.0, 8.0, 32.0)
MAX_FOLDS = 4
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


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
    # 95% bootstrap interval of macro_f1; (0, 0) for metrics stored before it was measured.
    macro_f1_ci: tuple[float, float] = (0.0, 0.0)

    def to_json(self) -> dict:
        return {
            "example_count": self.example_count,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "macro_f1_ci": list(self.macro_f1_ci),
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
            macro_f1_ci=tuple(value.get("macro_f1_ci", (0.0, 0.0))),
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
        macro_f1_ci=bootstrap_macro_f1(true_labels, predicted_labels, labels),
    )


def _macro_f1_of_counts(pairs: np.ndarray, label_count: int) -> np.ndarray:
    """Macro-F1 of each row of `pairs` (true * label_count + predicted codes), over labels present in the row."""
    rows = pairs.shape[0]
    offsets = (np.arange(rows) * label_count * label_count)[:, None]
    counts = np.bincount((pairs + offsets).ravel(), minlength=rows * label_count * label_count)
    matrices = counts.reshape(rows, label_count, label_count)
    true_positive = np.einsum("rii->ri", matrices)
    support, predicted = matrices.sum(axis=2), matrices.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(support + predicted > 0, 2 * true_positive / (support + predicted), 0.0)
    present = support > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_macro_f1(true_labels: list[str], predicted_labels: list[str], labels: list[str]) -> tuple[float, float]:
    """95% percentile interval of macro-F1 over resamples of the examples, with replacement (fixed seed)."""
    code = {label: index for index, label in enumerate(labels)}
    truth = np.array([code[label] for label in true_labels])
    guess = np.array([code.get(label, 0) for label in predicted_labels])
    pairs = truth * len(labels) + guess
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(pairs), size=(BOOTSTRAP_RESAMPLES, len(pairs)))
    values = _macro_f1_of_counts(pairs[draws], len(labels))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


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


def fit_head(
    features: np.ndarray,
    labels: list[str],
    *,
    seed: int,
    regularisation: float = REGULARISATION_C,
    class_weight: str | None = None,
    sample_weight: np.ndarray | None = None,
) -> LinearHead:
    model = LogisticRegression(C=regularisation, max_iter=3000, random_state=seed, class_weight=class_weight)
    model.fit(features, labels, sample_weight=sample_weight)
    weights, bias = model.coef_, model.intercept_
    if weights.shape[0] == 1:
        # Binary: scikit-learn keeps one logit; split it in two so that the softmax equals its sigmoid.
        weights = np.vstack([-weights[0] / 2, weights[0] / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2])
    head_labels = tuple(str(label) for label in model.classes_)
    return LinearHead(head_labels, weights.astype(np.float32), bias.astype(np.float32))


def _fold_count(labels: list[str]) -> int:
    smallest = min(labels.count(label) for label in set(labels))
    return max(2, min(MAX_FOLDS, smallest))


def fit_calibrated_head(features: np.ndarray, labels: list[str], *, seed: int) -> LinearHead:
    """Class-weighted logistic regression with C chosen by cross-validated macro-F1, then temperature-scaled.

    Balanced class weights keep a rare label from being drowned by a frequent one; the out-of-fold
    probabilities of the chosen C give the temperature (minimum log-loss), folded into the weights so that
    confidences mean what they say. A label with a single training example is not cross-validated: fixed C.
    """
    names = sorted(set(labels))
    if min(labels.count(label) for label in names) < 2:
        return fit_head(features, labels, seed=seed, class_weight="balanced")
    folds = list(StratifiedKFold(n_splits=_fold_count(labels), shuffle=True, random_state=seed).split(features, labels))
    truth = np.array([names.index(label) for label in labels])
    best: tuple[float, float, np.ndarray] | None = None
    for regularisation in C_GRID:
        logits = np.zeros((len(labels), len(names)))
        for train_index, test_index in folds:
            head = fit_head(
                features[train_index],
                [labels[i] for i in train_index],
                seed=seed,
                regularisation=regularisation,
                class_weight="balanced",
            )
            columns = [head.labels.index(name) if name in head.labels else None for name in names]
            raw = features[test_index] @ head.weights.T + head.bias
            logits[test_index] = np.stack(
                [raw[:, c] if c is not None else np.full(len(test_index), -1e3) for c in columns], axis=1
            )
        predicted = logits.argmax(axis=1)
        score = float(_macro_f1_of_counts((truth * len(names) + predicted)[None, :], len(names))[0])
        if best is None or score > best[0] + 1e-9:
            best = (score, regularisation, logits)
    assert best is not None  # C_GRID is not empty
    _, regularisation, logits = best
    head = fit_head(features, labels, seed=seed, regularisation=regularisation, class_weight="balanced")
    temperature = _temperature(logits, truth)
    return LinearHead(head.labels, (head.weights / temperature).astype(np.float32), head.bias / temperature)


def _temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    def log_loss(temperature: float) -> float:
        scaled = logits / temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        return float(-(scaled[np.arange(len(truth)), truth] - np.log(np.exp(scaled).sum(axis=1))).mean())

    return float(minimize_scalar(log_loss, bounds=(0.05, 20.0), method="bounded").x)


@dataclass(frozen=True)
class TrainedHead:
    head: LinearHead
    holdout: Metrics


def train_with_holdout(
    features: np.ndarray, labels: list[str], *, holdout_fraction: float, seed: int, fit=fit_calibrated_head
) -> TrainedHead:
    """Stratified split; the stored head is the one measured, trained without the holdout."""
    label_count = len(set(labels))
    holdout_size = min(max(label_count, round(holdout_fraction * len(labels))), len(labels) - label_count)
    train_index, holdout_index = train_test_split(
        np.arange(len(labels)), test_size=holdout_size, stratify=labels, random_state=seed % 2**32
    )
    head = fit(features[train_index], [labels[i] for i in train_index], seed=seed % 2**32)
    predicted = head.predict(features[holdout_index])
    holdout = measure([labels[i] for i in holdout_index], predicted, sorted(set(labels)))
    return TrainedHead(head, holdout)
