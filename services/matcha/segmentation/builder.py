"""One segmentation build on in-memory arrays: transform, cluster, name, profile, freeze.

Synchronous and deterministic for a seed, in two steps: `fit_build` assigns every customer, then
`finish_build` profiles the segments (the core stores the memberships meanwhile). The core runs
both in worker threads and relays `report(stage, completed, total)` as the version's progress.
"""

from dataclasses import dataclass

import numpy as np

from matcha.segmentation.features import FeatureTable
from matcha.segmentation.methods import (
    HDBSCAN_METHOD,
    KMEANS,
    OTHER_SEGMENT_ID,
    OUTLIER_SEGMENT_ID,
    RADIUS_QUANTILE,
    RULES,
    Assignment,
    FeatureProfile,
    FrozenModel,
    KMeansParameters,
    ProgressReport,
    Rule,
    assign,
    center_distances,
    describe_segment,
    fit_hdbscan,
    fit_kmeans,
    fit_scaling,
    match_previous_segments,
    profile,
    rule_variables,
    segment_means,
    silhouette,
    transform,
)

SNAPSHOT_ROWS = 100_000
TOP_FEATURES = 3


@dataclass(frozen=True)
class BuildSpec:
    method: str
    features: list[str]
    transforms: dict[str, str]
    seed: int
    exemplar_count: int
    kmeans: KMeansParameters | None = None
    min_cluster_size: int = 50
    min_samples: int = 50
    rules: tuple[Rule, ...] = ()
    silhouette_sample_size: int = 3_000


@dataclass(frozen=True)
class PreviousVersion:
    """The latest version of the same name: its segments keep their ids when they carry on."""

    keys: np.ndarray
    segment_ids: list[str]
    next_segment_number: int


@dataclass(frozen=True)
class SegmentResult:
    position: int
    id: str
    name: str
    size: int
    share: float
    outliers: bool
    condition: str
    profiles: list[FeatureProfile]
    top_features: list[str]
    # Rows of the feature table, closest to the centre first, and their distances.
    exemplar_rows: list[int]
    exemplar_distances: list[float]


@dataclass(frozen=True)
class BuildResult:
    model: FrozenModel
    assignment: Assignment
    segments: list[SegmentResult]
    k_scores: list[tuple[int, float]]
    silhouette: float
    # float32 sample of the build-time feature matrix (no customer reference), for drift.
    snapshot: bytes


@dataclass(frozen=True)
class FittedBuild:
    """What a build knows once every customer has a segment: enough to store the memberships while the
    segments are profiled."""

    raw: np.ndarray
    points: np.ndarray
    base: tuple[np.ndarray, np.ndarray]
    model: FrozenModel
    assignment: Assignment
    k_scores: list[tuple[int, float]]
    # Cluster labels for the silhouette (-1 for outliers); None for rules.
    labels: np.ndarray | None


def fit_build(
    table: FeatureTable,
    rfm_edges: dict[str, list[float]],
    spec: BuildSpec,
    previous: PreviousVersion | None,
    report: ProgressReport,
) -> FittedBuild:
    """Transform, cluster (or match rules) and assign every customer."""
    report("transforming", 0, 1)
    raw = table.matrix(spec.features)
    transforms = {} if spec.method == RULES else spec.transforms
    base = (raw.mean(axis=0), raw.std(axis=0))
    scaling = fit_scaling(raw, spec.features, transforms, base)
    points = transform(raw, scaling)
    report("transforming", 1, 1)
    if spec.method == RULES:
        result_model, assignment, k_scores, labels = _rules(table, rfm_edges, spec, scaling)
    else:
        result_model, assignment, k_scores, labels = _clusters(
            table, rfm_edges, spec, scaling, raw, base, points, previous, report
        )
    return FittedBuild(raw, points, base, result_model, assignment, k_scores, labels)


def finish_build(table: FeatureTable, spec: BuildSpec, fitted: FittedBuild, report: ProgressReport) -> BuildResult:
    """Profiles, exemplars, silhouette and the drift snapshot of an assigned build."""
    raw, points, base, result_model, assignment = (
        fitted.raw,
        fitted.points,
        fitted.base,
        fitted.model,
        fitted.assignment,
    )
    score = 0.0
    if fitted.labels is not None:
        report("scoring", 0, 1)
        score = silhouette(points, fitted.labels, spec.silhouette_sample_size, spec.seed)
        report("scoring", 1, 1)
    report("profiling", 0, len(result_model.segment_ids))
    segments = []
    population = len(table)
    means = segment_means(raw, assignment.positions, len(result_model.segment_ids))
    for position, segment_id in enumerate(result_model.segment_ids):
        members = assignment.positions == position
        profiles = profile(raw, spec.features, members, base, means[position])
        ranked = sorted(profiles, key=lambda item: -abs(item.standardized_difference))
        rows, distances = _exemplars(points, members, assignment, spec, result_model, position)
        segments.append(
            SegmentResult(
                position=position,
                id=segment_id,
                name=result_model.segment_names[position],
                size=int(members.sum()),
                share=float(members.sum()) / population,
                outliers=position == result_model.outlier_position,
                condition=result_model.rules[position].condition if position < len(result_model.rules) else "",
                profiles=profiles,
                top_features=[item.feature for item in ranked[:TOP_FEATURES]],
                exemplar_rows=rows,
                exemplar_distances=distances,
            )
        )
        report("profiling", position + 1, len(result_model.segment_ids))
    sample = np.random.default_rng(spec.seed).permutation(population)[:SNAPSHOT_ROWS]
    snapshot = raw[np.sort(sample)].astype(np.float32).tobytes()
    return BuildResult(result_model, assignment, segments, fitted.k_scores, score, snapshot)


def _rules(table, rfm_edges, spec, scaling):
    rules = list(spec.rules)
    variables = sorted(rule_variables(rules))
    ids = [rule.id for rule in rules] + [OTHER_SEGMENT_ID]
    names = [rule.name or rule.id for rule in rules] + ["Other"]
    model = FrozenModel(
        method=RULES,
        features=spec.features,
        scaling=scaling,
        rfm_edges=rfm_edges,
        segment_ids=ids,
        segment_names=names,
        # "true": whoever matches no rule of the caller's falls to "other".
        rules=[*rules, Rule(OTHER_SEGMENT_ID, "Other", "true")],
        rule_features=variables,
    )
    return model, assign(model, table.columns), [], None


def _clusters(table, rfm_edges, spec, scaling, raw, base, points, previous, report):
    if spec.method == KMEANS:
        clustering = fit_kmeans(points, spec.kmeans, spec.seed, report)
    else:
        clustering = fit_hdbscan(points, spec.min_cluster_size, spec.min_samples, report)
    labels = clustering.labels
    cluster_count = len(clustering.centers)
    matched = match_previous_segments(
        labels,
        table.keys,
        previous.keys if previous else np.zeros(0, dtype=np.int64),
        previous.segment_ids if previous else [],
        cluster_count,
    )
    next_number = previous.next_segment_number if previous else 1
    ids = []
    for segment_id in matched:
        if segment_id is None:
            segment_id = f"s{next_number}"
            next_number += 1
        ids.append(segment_id)
    clustered = labels >= 0
    means = segment_means(raw[clustered] if not clustered.all() else raw, labels[clustered], cluster_count)
    names = [describe_segment(profile(raw, spec.features, None, base, means[label])) for label in range(cluster_count)]
    distances_to_centers = center_distances(points, clustering.centers)
    own = np.where(clustered, labels, 0)
    distance = distances_to_centers[np.arange(len(points)), own]
    radii = [
        float(np.percentile(distance[labels == label], RADIUS_QUANTILE)) if (labels == label).any() else 0.0
        for label in range(cluster_count)
    ]
    outlier_position = -1
    positions = labels.copy()
    if spec.method == HDBSCAN_METHOD and (labels < 0).any():
        outlier_position = cluster_count
        ids.append(OUTLIER_SEGMENT_ID)
        names.append("Outliers")
        positions = np.where(labels < 0, outlier_position, labels)
    model = FrozenModel(
        method=spec.method,
        features=spec.features,
        scaling=scaling,
        rfm_edges=rfm_edges,
        segment_ids=ids,
        segment_names=names,
        centers=clustering.centers.tolist(),
        radii=radii,
        outlier_position=outlier_position,
        next_segment_number=next_number,
    )
    if spec.method == KMEANS:
        # How much nearer the own centre is than the next nearest one.
        others = distances_to_centers.copy()
        others[np.arange(len(points)), own] = np.inf
        second = others.min(axis=1) if cluster_count > 1 else distance
        confidence = np.where(second > 0, 1.0 - distance / np.maximum(second, 1e-12), 1.0)
    else:
        # HDBSCAN's membership strengths.
        assert clustering.probabilities is not None
        confidence = clustering.probabilities
    assignment = Assignment(
        positions=positions,
        distances=np.where(labels >= 0, distance, distances_to_centers.min(axis=1) if cluster_count else 0.0),
        confidences=np.clip(confidence, 0.0, 1.0),
    )
    return model, assignment, clustering.k_scores, labels


def _exemplars(points, members, assignment, spec, model, position):
    if not spec.exemplar_count or not members.any():
        return [], []
    rows = np.flatnonzero(members)
    if model.method == RULES or position == model.outlier_position:
        # No centre: the customers closest to the segment's mean, in standardised space.
        center = points[rows].mean(axis=0)
        distances = np.sqrt(((points[rows] - center) ** 2).sum(axis=1))
    else:
        distances = assignment.distances[rows]
    order = np.argsort(distances, kind="stable")[: spec.exemplar_count]
    return rows[order].tolist(), distances[order].tolist()
