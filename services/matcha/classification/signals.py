"""Weak-signal detection: cluster post embeddings into topics, count them per window, rate their strength.

Clustering over-segments with k-means, then merges fine clusters whose centroids are close
(average-linkage on cosine distance), so the number of topics is found, not given, and the
cost stays linear in the number of posts (k-means with a bounded k). Topic labels come
from class-based TF-IDF: terms frequent in a topic and rare across topics.
"""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal, overload

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

# Bounded so that clustering stays linear in the number of posts.
MAX_FINE_CLUSTERS = 100
# Fine clusters whose centroids are at least this similar form one topic.
MERGE_SIMILARITY = 0.6
# A post less similar than this to its topic's centroid belongs to no topic.
MEMBER_SIMILARITY = 0.3
MAX_TERMS = 10
LABEL_TERMS = 3
_FRENCH_STOP_WORD_TEXT = (
    "alors avec avoir aussi autre avant bien cela ces cette comme dans depuis donc elle elles encore est "
    "être fait faire leur leurs mais même nous notre nos ont par pas peu plus pour quand que quel quelle qui "
    "sans ses son sont sous sur tous tout toute toutes très une vous votre vos était été les des aux"
)
FRENCH_STOP_WORDS = frozenset(_FRENCH_STOP_WORD_TEXT.split())
_TOKEN_PATTERN = r"(?u)\b[^\W\d_]{3,}\b"


class Strength(Enum):
    NOISE = 1
    WEAK = 2
    STRONG = 3


@dataclass(frozen=True)
class PostInput:
    id: str
    text: str
    time: datetime
    source: str = ""


@dataclass(frozen=True)
class SignalParameters:
    window: timedelta
    window_count: int
    end: datetime
    min_topic_size: int = 5
    strong_share: float = 0.05
    min_active_windows: int = 3
    min_growth_slope: float = 0.1
    max_topics: int = 50
    representative_count: int = 3
    seed: int = 0
    # Fit k-means on at most this many posts (0: all), every post of the two latest windows among them, the
    # others drawn at random; every post is then assigned to its nearest centre. Listening watches set it:
    # their reports must come seconds after a window closes, over look-backs of tens of thousands of posts.
    fit_sample: int = 0

    @property
    def start(self) -> datetime:
        return self.end - self.window * self.window_count


@dataclass(frozen=True)
class Representative:
    post: PostInput
    centrality: float


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    terms: list[str]
    strength: Strength
    post_count: int
    share: float
    # One count per window, oldest first.
    counts: list[int]
    growth_slope: float
    first_seen: datetime
    last_seen: datetime
    source_count: int
    source_diversity: float
    # Shares of negative, neutral, positive; None when sentiment was skipped.
    sentiment_mix: tuple[float, float, float] | None
    sentiment_shift: float
    representatives: list[Representative]


@dataclass(frozen=True)
class SignalReport:
    topics: list[Topic]
    post_count: int
    unclustered_post_count: int


def assign_topics(
    embeddings: np.ndarray, *, min_topic_size: int, seed: int, fit_indices: np.ndarray | None = None
) -> np.ndarray:
    """Topic index per post (0 = largest topic), -1 for posts in no topic. With `fit_indices`, k-means is fitted
    on those posts only, then every post goes to its nearest centre."""
    count = len(embeddings)
    assignment = np.full(count, -1)
    if count < min_topic_size:
        return assignment
    fine_count = min(MAX_FINE_CLUSTERS, max(1, count // min_topic_size))
    if fine_count == 1:
        fine = np.zeros(count, dtype=int)
        centroids = embeddings.mean(axis=0, keepdims=True)
    else:
        # float64: on float32 input, scikit-learn's k-means++ computes distances in small upcast
        # chunks, three times slower at every size (measured in docs/benchmarks.md).
        vectors = embeddings.astype(np.float64)
        fitted = vectors if fit_indices is None else vectors[fit_indices]
        kmeans = KMeans(n_clusters=fine_count, n_init=1, random_state=seed % 2**32).fit(fitted)
        fine = kmeans.labels_ if fit_indices is None else kmeans.predict(vectors)
        centroids = kmeans.cluster_centers_
    if len(centroids) > 1:
        merged = AgglomerativeClustering(
            n_clusters=None, distance_threshold=1 - MERGE_SIMILARITY, metric="cosine", linkage="average"
        ).fit_predict(centroids)
        topic_of_post = merged[fine]
    else:
        topic_of_post = fine
    candidates = []
    for topic in np.unique(topic_of_post):
        members = np.flatnonzero(topic_of_post == topic)
        centroid = _unit(embeddings[members].mean(axis=0))
        members = members[embeddings[members] @ centroid >= MEMBER_SIMILARITY]
        if len(members) >= min_topic_size:
            candidates.append(members)
    # Largest first; ties by earliest post, so that ids are stable for the same input and seed.
    candidates.sort(key=lambda members: (-len(members), members[0]))
    for index, members in enumerate(candidates):
        assignment[members] = index
    return assignment


def distinctive_terms(texts: list[str], assignment: np.ndarray, topic_count: int) -> list[list[str]]:
    """Class-based TF-IDF: a term's frequency in a topic, weighted by its rarity across topics."""
    clustered = np.flatnonzero(assignment >= 0)
    if topic_count == 0:
        return []
    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | FRENCH_STOP_WORDS), token_pattern=_TOKEN_PATTERN, lowercase=True
    )
    try:
        document_terms = vectorizer.fit_transform([texts[index] for index in clustered])
    except ValueError:  # nothing but stop words and digits
        return [[] for _ in range(topic_count)]
    indicator = np.zeros((topic_count, len(clustered)), dtype=np.float32)
    indicator[assignment[clustered], np.arange(len(clustered))] = 1.0
    topic_terms = np.asarray((document_terms.T @ indicator.T).T)
    term_frequency = topic_terms / np.maximum(topic_terms.sum(axis=1, keepdims=True), 1)
    average_words = topic_terms.sum() / topic_count
    inverse_frequency = np.log1p(average_words / np.maximum(topic_terms.sum(axis=0), 1))
    scores = term_frequency * inverse_frequency
    vocabulary = vectorizer.get_feature_names_out()
    terms = []
    for row in scores:
        # Stable sort: equal scores keep vocabulary (alphabetical) order.
        best = np.argsort(-row, kind="stable")[:MAX_TERMS]
        terms.append([str(vocabulary[index]) for index in best if row[index] > 0])
    return terms


@overload
def detect_signals(
    posts: list[PostInput],
    embeddings: np.ndarray,
    sentiments: list[str] | None,
    parameters: SignalParameters,
    *,
    with_assignment: Literal[False] = False,
) -> SignalReport: ...


@overload
def detect_signals(
    posts: list[PostInput],
    embeddings: np.ndarray,
    sentiments: list[str] | None,
    parameters: SignalParameters,
    *,
    with_assignment: Literal[True],
) -> tuple[SignalReport, np.ndarray]: ...


def detect_signals(
    posts: list[PostInput],
    embeddings: np.ndarray,
    sentiments: list[str] | None,
    parameters: SignalParameters,
    *,
    with_assignment: bool = False,
) -> SignalReport | tuple[SignalReport, np.ndarray]:
    """`posts` lie within the look-back; `sentiments` holds one polarity name per post, or None. With
    `with_assignment`, also each post's topic index (topic `t{index + 1}`, -1 for none)."""
    window_seconds = parameters.window.total_seconds()
    window_of_post = np.array(
        [
            min(int((post.time - parameters.start).total_seconds() // window_seconds), parameters.window_count - 1)
            for post in posts
        ],
        dtype=int,
    )
    sample = _fit_sample(window_of_post, parameters)
    assignment = assign_topics(
        embeddings, min_topic_size=parameters.min_topic_size, seed=parameters.seed, fit_indices=sample
    )
    topic_count = int(assignment.max()) + 1 if len(assignment) else 0
    if sample is None:
        terms = distinctive_terms([post.text for post in posts], assignment, topic_count)
    else:
        # Term frequencies from the sample k-means was fitted on: every topic has posts there (a topic too
        # small in the sample gets the terms of its sampled posts, possibly none, and is labelled by its number).
        terms = distinctive_terms([posts[index].text for index in sample], assignment[sample], topic_count)
    topics = [
        _describe_topic(
            index,
            np.flatnonzero(assignment == index),
            terms[index],
            posts,
            embeddings,
            sentiments,
            window_of_post,
            parameters,
        )
        for index in range(topic_count)
    ]
    topics.sort(key=lambda topic: (-topic.strength.value, -topic.post_count, int(topic.id[1:])))
    report = SignalReport(topics[: parameters.max_topics], len(posts), int(np.sum(assignment < 0)))
    return (report, assignment) if with_assignment else report


def _fit_sample(window_of_post: np.ndarray, parameters: SignalParameters) -> np.ndarray | None:
    """The posts k-means is fitted on when `fit_sample` is less than the posts: the latest two windows' (where a
    new topic has its first posts), then a random draw of the older ones."""
    limit = parameters.fit_sample
    if not limit or len(window_of_post) <= limit:
        return None
    recent = np.flatnonzero(window_of_post >= parameters.window_count - 2)
    generator = np.random.default_rng(parameters.seed)
    if len(recent) >= limit:
        return np.sort(generator.choice(recent, size=limit, replace=False))
    older = np.flatnonzero(window_of_post < parameters.window_count - 2)
    drawn = generator.choice(older, size=limit - len(recent), replace=False)
    return np.sort(np.concatenate([recent, drawn]))


def _describe_topic(
    index: int,
    members: np.ndarray,
    terms: list[str],
    posts: list[PostInput],
    embeddings: np.ndarray,
    sentiments: list[str] | None,
    window_of_post: np.ndarray,
    parameters: SignalParameters,
) -> Topic:
    counts = np.bincount(window_of_post[members], minlength=parameters.window_count)
    slope = _least_squares_slope(counts)
    share = len(members) / len(posts)
    recent_active = int(np.count_nonzero(counts[parameters.window_count // 2 :]))
    if share >= parameters.strong_share:
        strength = Strength.STRONG
    elif recent_active >= parameters.min_active_windows and slope >= parameters.min_growth_slope:
        strength = Strength.WEAK
    else:
        strength = Strength.NOISE
    times = [posts[member].time for member in members]
    sources = [posts[member].source for member in members if posts[member].source]
    centroid = _unit(embeddings[members].mean(axis=0))
    centrality = embeddings[members] @ centroid
    order = np.lexsort((members, -centrality))[: parameters.representative_count]
    mix, shift = (
        _sentiment_mix_and_shift(members, sentiments, window_of_post, parameters.window_count)
        if sentiments is not None
        else (None, 0.0)
    )
    return Topic(
        id=f"t{index + 1}",
        label=" / ".join(terms[:LABEL_TERMS]) or f"topic {index + 1}",
        terms=terms,
        strength=strength,
        post_count=len(members),
        share=share,
        counts=counts.tolist(),
        growth_slope=slope,
        first_seen=min(times),
        last_seen=max(times),
        source_count=len(set(sources)),
        source_diversity=_normalised_entropy(sources),
        sentiment_mix=mix,
        sentiment_shift=shift,
        representatives=[Representative(posts[members[i]], float(centrality[i])) for i in order],
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _least_squares_slope(counts: np.ndarray) -> float:
    positions = np.arange(len(counts), dtype=float)
    centred = positions - positions.mean()
    return float(centred @ (counts - counts.mean()) / (centred @ centred))


def _normalised_entropy(sources: list[str]) -> float:
    # Counted once: a topic may have as many distinct sources (accounts) as posts.
    counts = Counter(sources)
    if len(counts) < 2:
        return 0.0
    shares = np.array(sorted(counts.values()), dtype=float) / len(sources)
    return float(-(shares * np.log(shares)).sum() / math.log(len(counts)))


def _sentiment_mix_and_shift(
    members: np.ndarray, sentiments: list[str], window_of_post: np.ndarray, window_count: int
) -> tuple[tuple[float, float, float], float]:
    labels = [sentiments[member] for member in members]
    negative, neutral, positive = (
        labels.count(polarity) / len(labels) for polarity in ("negative", "neutral", "positive")
    )
    mix = (negative, neutral, positive)
    halves = [
        [sentiments[member] for member in members if (window_of_post[member] >= window_count / 2) == second]
        for second in (False, True)
    ]
    if not all(halves):
        # A topic seen in one half only has no shift to measure.
        return mix, 0.0
    balance = [(half.count("positive") - half.count("negative")) / len(half) for half in halves]
    return mix, balance[1] - balance[0]
