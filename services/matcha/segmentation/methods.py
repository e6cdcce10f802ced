"""Segmentation methods on plain arrays: scaling, k-means, HDBSCAN, rules, assignment, profiles.

Everything here is synchronous numpy/scikit-learn work, run off the event loop by
the core. A `FrozenModel` is what a READY version keeps: enough to score any
customer later exactly as the customers of the build were scored.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import cel
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score

from matcha.segmentation.k_choice import SILHOUETTE, choose_k

KMEANS = "kmeans"
HDBSCAN_METHOD = "hdbscan"
RULES = "rules"

STANDARDIZE = "standardize"
LOG1P_STANDARDIZE = "log1p_standardize"
QUANTILE = "quantile"
NONE = "none"
TRANSFORMS = (STANDARDIZE, LOG1P_STANDARDIZE, QUANTILE, NONE)

MINI_BATCH_ABOVE = 50_000
OUTLIER_SEGMENT_ID = "outliers"
OTHER_SEGMENT_ID = "other"
# HDBSCAN membership radius of a cluster: this quantile of its members' distances to its centre.
RADIUS_QUANTILE = 95
_QUANTILE_GRID = np.linspace(0, 100, 101)

# The classic RFM cells, first match wins.
CLASSIC_RFM_RULES = (
    ("champions", "Champions", "rfm_recency_score >= 4.0 && rfm_frequency_score >= 4.0 && rfm_monetary_score >= 4.0"),
    ("loyal", "Loyal", "rfm_recency_score >= 3.0 && rfm_frequency_score >= 4.0"),
    ("potential_loyalists", "Potential loyalists", "rfm_recency_score >= 4.0 && rfm_frequency_score >= 2.0"),
    ("new", "New", "rfm_recency_score == 5.0 && rfm_frequency_score == 1.0"),
    ("promising", "Promising", "rfm_recency_score >= 4.0 && rfm_frequency_score == 1.0"),
    ("need_attention", "Need attention", "rfm_recency_score == 3.0 && rfm_frequency_score <= 3.0"),
    ("cannot_lose", "Cannot lose them", "rfm_recency_score <= 2.0 && rfm_frequency_score >= 5.0"),
    ("at_risk", "At risk", "rfm_recency_score <= 2.0 && rfm_frequency_score >= 3.0"),
    ("hibernating", "Hibernating", "rfm_recency_score == 2.0 && rfm_frequency_score <= 2.0"),
    ("lost", "Lost", "rfm_recency_score <= 1.0"),
)

ProgressReport = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Scaling:
    feature: str
    transform: str
    center: float
    scale: float
    # Quantile transform: the feature's percentiles 0..100 at build time.
    grid: tuple[float, ...] = ()

    def apply(self, values: np.ndarray) -> np.ndarray:
        if self.transform == QUANTILE:
            return np.interp(values, np.asarray(self.grid), _QUANTILE_GRID / 100.0)
        if self.transform == LOG1P_STANDARDIZE:
            values = np.sign(values) * np.log1p(np.abs(values))
        return (values - self.center) / self.scale


def fit_scaling(
    matrix: np.ndarray,
    features: list[str],
    transforms: dict[str, str],
    moments: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Scaling]:
    """`moments` (each column's mean and standard deviation, when the caller has them) spare a pass per
    standardised column."""
    scalings = []
    for column, feature in enumerate(features):
        transform = transforms.get(feature, STANDARDIZE)
        values = matrix[:, column]
        if transform == STANDARDIZE and moments is not None:
            deviation = float(moments[1][column])
            scalings.append(Scaling(feature, transform, float(moments[0][column]), deviation if deviation > 0 else 1.0))
            continue
        if transform == QUANTILE:
            grid = np.percentile(values, _QUANTILE_GRID)
            scalings.append(Scaling(feature, transform, 0.0, 1.0, tuple(float(v) for v in grid)))
            continue
        if transform == NONE:
            scalings.append(Scaling(feature, transform, 0.0, 1.0))
            continue
        if transform == LOG1P_STANDARDIZE:
            values = np.sign(values) * np.log1p(np.abs(values))
        deviation = float(values.std())
        scalings.append(Scaling(feature, transform, float(values.mean()), deviation if deviation > 0 else 1.0))
    return scalings


def transform(matrix: np.ndarray, scalings: list[Scaling]) -> np.ndarray:
    if all(scaling.transform in (STANDARDIZE, NONE) for scaling in scalings):
        # One pass over the matrix instead of a column at a time.
        centers = np.asarray([scaling.center for scaling in scalings])
        scales = np.asarray([scaling.scale for scaling in scalings])
        return (np.asarray(matrix, dtype=np.float64) - centers) / scales
    return np.column_stack([scaling.apply(matrix[:, column]) for column, scaling in enumerate(scalings)])


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    condition: str


def compile_rules(rules: list[Rule]) -> list:
    """Compiles each condition; raises ValueError naming the rule's index."""
    programs = []
    for index, rule in enumerate(rules):
        try:
            programs.append(cel.compile(rule.condition))
        except (ValueError, RuntimeError) as error:
            raise RuleError(index, str(error).splitlines()[0]) from None
    return programs


def rule_variables(rules: list[Rule]) -> set[str]:
    return {name for program in compile_rules(rules) for name in program.variables()}


class RuleError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class FrozenModel:
    """A READY version's scoring function, serialisable to JSON."""

    method: str
    features: list[str]
    scaling: list[Scaling]
    rfm_edges: dict[str, list[float]]
    segment_ids: list[str]
    segment_names: list[str]
    # k-means and HDBSCAN: one centre per segment in transformed space (none for outliers).
    centers: list[list[float]] = field(default_factory=list)
    radii: list[float] = field(default_factory=list)
    outlier_position: int = -1
    rules: list[Rule] = field(default_factory=list)
    rule_features: list[str] = field(default_factory=list)
    next_segment_number: int = 1

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "features": self.features,
            "scaling": [scaling.__dict__ | {"grid": list(scaling.grid)} for scaling in self.scaling],
            "rfm_edges": self.rfm_edges,
            "segment_ids": self.segment_ids,
            "segment_names": self.segment_names,
            "centers": self.centers,
            "radii": self.radii,
            "outlier_position": self.outlier_position,
            "rules": [rule.__dict__ for rule in self.rules],
            "rule_features": self.rule_features,
            "next_segment_number": self.next_segment_number,
        }

    @classmethod
    def from_json(cls, document: dict) -> "FrozenModel":
        return cls(
            method=document["method"],
            features=document["features"],
            scaling=[Scaling(**(item | {"grid": tuple(item["grid"])})) for item in document["scaling"]],
            rfm_edges=document["rfm_edges"],
            segment_ids=document["segment_ids"],
            segment_names=document["segment_names"],
            centers=document["centers"],
            radii=document["radii"],
            outlier_position=document["outlier_position"],
            rules=[Rule(**rule) for rule in document["rules"]],
            rule_features=document["rule_features"],
            next_segment_number=document["next_segment_number"],
        )

    @property
    def input_features(self) -> list[str]:
        """Every feature scoring needs."""
        return sorted(set(self.features) | set(self.rule_features))


@dataclass(frozen=True)
class Assignment:
    positions: np.ndarray
    distances: np.ndarray
    confidences: np.ndarray
    # Next nearest segments (positions, distances), -1 where none: what `Assign` answers with; a build
    # stores none, so it leaves them out.
    alternative_positions: np.ndarray | None = None
    alternative_distances: np.ndarray | None = None


def assign(model: FrozenModel, columns: dict[str, np.ndarray]) -> Assignment:
    """Scores customers (feature columns, RFM scores included) against a frozen model."""
    count = len(next(iter(columns.values())))
    if model.method == RULES:
        positions = _match_rules(model, columns, count)
        empty = np.full((count, 0), -1)
        return Assignment(positions, np.zeros(count), np.ones(count), empty, np.zeros((count, 0)))
    points = transform(np.column_stack([columns[name] for name in model.features]), model.scaling)
    cluster_positions = [p for p in range(len(model.segment_ids)) if p != model.outlier_position]
    centers = np.asarray(model.centers, dtype=np.float64)
    distances = center_distances(points, centers)
    order = np.argsort(distances, axis=1, kind="stable")
    nearest = distances[np.arange(count), order[:, 0]]
    if centers.shape[0] > 1:
        second = distances[np.arange(count), order[:, 1]]
        confidence = np.where(second > 0, 1.0 - nearest / np.maximum(second, 1e-12), 1.0)
    else:
        confidence = np.ones(count)
    positions = np.asarray(cluster_positions)[order[:, 0]]
    alternatives = order[:, 1:3]
    alternative_positions = np.asarray(cluster_positions)[alternatives]
    alternative_distances = np.take_along_axis(distances, alternatives, axis=1)
    if model.method == HDBSCAN_METHOD:
        radii = np.asarray(model.radii)[order[:, 0]]
        outside = nearest > radii
        confidence = np.where(outside, 0.0, 1.0 - nearest / np.maximum(radii, 1e-12))
        if model.outlier_position >= 0:
            positions = np.where(outside, model.outlier_position, positions)
    return Assignment(positions, nearest, np.clip(confidence, 0.0, 1.0), alternative_positions, alternative_distances)


_DISTANCE_CHUNK = 65_536


def center_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances (rows x centres) without materialising rows x centres x features; by chunks of
    rows, so the temporaries stay small and in cache."""
    distances = np.empty((len(points), len(centers)))
    center_norms = (centers**2).sum(axis=1)[None, :]
    for start in range(0, len(points), _DISTANCE_CHUNK):
        chunk = points[start : start + _DISTANCE_CHUNK]
        squared = np.einsum("ij,ij->i", chunk, chunk)[:, None] - 2.0 * chunk @ centers.T + center_norms
        np.sqrt(np.maximum(squared, 0.0, out=squared), out=distances[start : start + len(chunk)])
    return distances


def _match_rules(model: FrozenModel, columns: dict[str, np.ndarray], count: int) -> np.ndarray:
    programs = compile_rules(model.rules)
    positions = np.full(count, len(model.segment_ids) - 1, dtype=np.int64)
    names = model.rule_features
    values = np.column_stack([columns[name] for name in names]) if names else np.zeros((count, 0))
    for row in range(count):
        context = {name: float(value) for name, value in zip(names, values[row], strict=True)}
        for position, program in enumerate(programs):
            if program.execute(context) is True:
                positions[row] = position
                break
    return positions


def check_rules_evaluate(rules: list[Rule], sample: dict[str, float]) -> None:
    """Each condition must yield a boolean on real feature values; raises RuleError otherwise."""
    for index, program in enumerate(compile_rules(rules)):
        try:
            outcome = program.execute(sample)
        except (ValueError, RuntimeError, TypeError) as error:
            raise RuleError(index, str(error).splitlines()[0]) from None
        if not isinstance(outcome, bool):
            raise RuleError(index, f"must evaluate to a boolean, got {type(outcome).__name__}")


def kmeans_estimator(k: int, population: int, seed: int) -> KMeans | MiniBatchKMeans:
    """The estimator a build fits for `k`; also what benchmarks compare against."""
    if population > MINI_BATCH_ABOVE:
        return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    return KMeans(n_clusters=k, random_state=seed, n_init=4)


@dataclass(frozen=True)
class KMeansParameters:
    k: int
    k_min: int
    k_max: int
    sample_size: int
    # How k is chosen when `k` is 0 (see k_choice).
    criterion: str = SILHOUETTE
    min_share: float = 0.0
    preferred: tuple[int, int] | None = None


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # -1 for HDBSCAN outliers
    centers: np.ndarray
    probabilities: np.ndarray | None
    # Per candidate k: k, silhouette, stability, smallest share, reason (on the chosen row).
    k_scores: list[list]


def fit_kmeans(points: np.ndarray, parameters: KMeansParameters, seed: int, report: ProgressReport) -> Clustering:
    k_scores: list[list] = []
    k = parameters.k
    if not k:
        sample = points[_sample_rows(len(points), parameters.sample_size, seed)]
        candidates = [k for k in range(parameters.k_min, parameters.k_max + 1) if k < len(sample)]
        k, k_scores = choose_k(
            sample,
            candidates,
            criterion=parameters.criterion,
            min_share=parameters.min_share,
            preferred=parameters.preferred,
            seed=seed,
            report=lambda done, total: report("selecting_k", done, total),
        )
    report("fitting", 0, 1)
    estimator = kmeans_estimator(k, len(points), seed).fit(points)
    report("fitting", 1, 1)
    return Clustering(estimator.labels_.astype(np.int64), estimator.cluster_centers_, None, k_scores)


def fit_hdbscan(points: np.ndarray, min_cluster_size: int, min_samples: int, report: ProgressReport) -> Clustering:
    report("fitting", 0, 1)
    estimator = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit(points)
    report("fitting", 1, 1)
    labels = estimator.labels_.astype(np.int64)
    clusters = sorted(set(labels.tolist()) - {-1})
    centers = np.asarray([points[labels == label].mean(axis=0) for label in clusters]).reshape(len(clusters), -1)
    return Clustering(labels, centers, estimator.probabilities_, [])


def _sample_rows(count: int, size: int, seed: int) -> np.ndarray:
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=size, replace=False))


def silhouette(points: np.ndarray, labels: np.ndarray, sample_size: int, seed: int) -> float:
    kept = labels >= 0
    points, labels = points[kept], labels[kept]
    if len(set(labels.tolist())) < 2:
        return 0.0
    rows = _sample_rows(len(points), sample_size, seed)
    if len(set(labels[rows].tolist())) < 2:
        return 0.0
    return float(silhouette_score(points[rows], labels[rows]))


def match_previous_segments(
    labels: np.ndarray,
    keys: np.ndarray,
    previous_keys: np.ndarray,
    previous_ids: list[str],
    cluster_count: int,
) -> list[str | None]:
    """For each new cluster, the id of the previous segment it shares most customers with (one to one), or None."""
    matched: list[str | None] = [None] * cluster_count
    if not len(previous_keys):
        return matched
    order = np.argsort(previous_keys)
    sorted_keys = previous_keys[order]
    found = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    previous_of = np.asarray(previous_ids, dtype=object)[order][found]
    common = (sorted_keys[found] == keys) & (labels >= 0) & (previous_of != OUTLIER_SEGMENT_ID)
    candidates = sorted(set(previous_of[common].tolist()))
    if not candidates:
        return matched
    index_of = {segment_id: index for index, segment_id in enumerate(candidates)}
    overlap = np.zeros((cluster_count, len(candidates)))
    np.add.at(overlap, (labels[common], [index_of[segment_id] for segment_id in previous_of[common].tolist()]), 1)
    rows, columns = linear_sum_assignment(-overlap)
    for row, column in zip(rows, columns, strict=True):
        if overlap[row, column] > 0:
            matched[row] = candidates[column]
    return matched


@dataclass(frozen=True)
class FeatureProfile:
    feature: str
    mean: float
    base_mean: float
    lift: float
    standardized_difference: float


def segment_means(matrix: np.ndarray, positions: np.ndarray, count: int) -> np.ndarray:
    """Mean feature values of each of `count` segments (zeros for an empty one), in one pass per feature."""
    sizes = np.bincount(positions, minlength=count)[:count]
    sums = np.column_stack(
        [
            np.bincount(positions, weights=matrix[:, column], minlength=count)[:count]
            for column in range(matrix.shape[1])
        ]
    ).reshape(count, matrix.shape[1])
    return sums / np.maximum(sizes, 1)[:, None]


def profile(
    matrix: np.ndarray,
    features: list[str],
    members: np.ndarray | None,
    base: tuple[np.ndarray, np.ndarray] | None = None,
    segment_mean: np.ndarray | None = None,
) -> list[FeatureProfile]:
    """Segment against base; `base` (mean, std of the whole matrix) spares recomputing it per segment, and
    `segment_mean` (from `segment_means`) the pass over the segment's members."""
    base_mean, base_std = base if base is not None else (matrix.mean(axis=0), matrix.std(axis=0))
    if segment_mean is None:
        assert members is not None  # callers give the members or their mean
        segment_mean = matrix[members].mean(axis=0) if members.any() else np.zeros(len(features))
    profiles = []
    for column, feature in enumerate(features):
        mean, base_value = float(segment_mean[column]), float(base_mean[column])
        deviation = float(base_std[column])
        profiles.append(
            FeatureProfile(
                feature,
                mean,
                base_value,
                mean / base_value if base_value else 0.0,
                (mean - base_value) / deviation if deviation > 0 else 0.0,
            )
        )
    return profiles


def describe_segment(profiles: list[FeatureProfile], top: int = 2) -> str:
    """A readable name from the most distinguishing features, e.g. "high frequency, low recency_days"."""
    ranked = sorted(profiles, key=lambda item: -abs(item.standardized_difference))[:top]
    parts = [
        f"{'high' if item.standardized_difference > 0 else 'low'} {item.feature}"
        for item in ranked
        if abs(item.standardized_difference) >= 0.1
    ]
    return ", ".join(parts) or "typical"
