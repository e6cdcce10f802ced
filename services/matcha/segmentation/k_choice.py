"""Choosing k for k-means: by silhouette, or by stability across resamples, among the candidates
whose every segment holds a minimum share of the customers and within a preferred range.

Silhouette alone tends to favour k = 2 on customer bases, whose RFM clouds are one skewed blob with a
tail: two segments separate best and address nobody in particular. A segmentation is actionable when
its segments are big enough to act on and come back when the data is resampled; the reason given
says which candidates were left out and why the chosen one won.
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

SILHOUETTE, STABILITY = "silhouette", "stability"
RESAMPLES = 4
RESAMPLE_FRACTION = 0.8
# Candidates this close to the most stable one are as stable: the largest of them wins, since more
# segments that come back as reliably address customers more precisely.
STABILITY_TOLERANCE = 0.02


@dataclass(frozen=True)
class Candidate:
    k: int
    silhouette: float
    # Mean adjusted Rand index between fits on resamples, each labelling the whole sample; 0 when
    # the criterion is silhouette (not computed).
    stability: float
    smallest_share: float

    def as_row(self, reason: str = "") -> list:
        return [self.k, self.silhouette, self.stability, self.smallest_share, reason]


def stability(sample: np.ndarray, k: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    size = max(k + 1, int(RESAMPLE_FRACTION * len(sample)))
    labelings = []
    for resample in range(RESAMPLES):
        rows = rng.choice(len(sample), size=size, replace=False)
        model = KMeans(n_clusters=k, random_state=seed + resample, n_init=2).fit(sample[rows])
        labelings.append(model.predict(sample))
    return float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(labelings, 2)]))


def choose_k(
    sample: np.ndarray,
    candidates: list[int],
    *,
    criterion: str,
    min_share: float,
    preferred: tuple[int, int] | None,
    seed: int,
    report: Callable[[int, int], None],
) -> tuple[int, list[list]]:
    """The chosen k and one row per candidate (k, silhouette, stability, smallest share, reason);
    the chosen row carries the reason."""
    scored: list[Candidate] = []
    for done, k in enumerate(candidates):
        labels = KMeans(n_clusters=k, random_state=seed, n_init=2).fit_predict(sample)
        score = float(silhouette_score(sample, labels)) if len(set(labels.tolist())) > 1 else -1.0
        share = float(np.bincount(labels, minlength=k).min() / len(labels))
        stable = stability(sample, k, seed) if criterion == STABILITY else 0.0
        scored.append(Candidate(k, score, stable, share))
        report(done + 1, len(candidates))
    in_range = [c for c in scored if preferred is None or preferred[0] <= c.k <= preferred[1]] or scored
    big_enough = [c for c in in_range if c.smallest_share >= min_share]
    pool = big_enough or in_range

    if criterion == STABILITY:
        best = max(candidate.stability for candidate in pool)
        chosen = max((c for c in pool if c.stability >= best - STABILITY_TOLERANCE), key=lambda c: c.k)
    else:
        chosen = max(pool, key=lambda candidate: (candidate.silhouette, -candidate.k))
    reason = _reason(chosen, scored, in_range, big_enough, criterion, min_share, preferred)
    return chosen.k, [c.as_row(reason if c is chosen else "") for c in scored]


def _reason(chosen, scored, in_range, big_enough, criterion, min_share, preferred) -> str:
    if criterion == STABILITY:
        best = max(candidate.stability for candidate in (big_enough or in_range))
        measure = (
            f"the largest k as stable across {RESAMPLES} resamples as the most stable (adjusted Rand "
            f"{chosen.stability:.3f}, best {best:.3f}, tolerance {STABILITY_TOLERANCE}; silhouette "
            f"{chosen.silhouette:.2f})"
        )
    else:
        measure = f"highest silhouette ({chosen.silhouette:.2f})"
    scope = [f"k {preferred[0]} to {preferred[1]}"] if preferred else []
    if min_share > 0:
        scope.append(f"every segment at least {min_share:.0%} of customers")
    text = f"k = {chosen.k}: {measure}"
    if scope:
        text += " among " + " with ".join(scope)
    if min_share > 0 and not big_enough:
        text += f" (no candidate met the {min_share:.0%} share: the criterion alone decided)"
    best_silhouette = max(scored, key=lambda c: (c.silhouette, -c.k))
    if best_silhouette.k != chosen.k:
        excluded = []
        if best_silhouette not in in_range:
            excluded.append("outside the preferred range")
        elif best_silhouette.smallest_share < min_share:
            excluded.append(f"its smallest segment holds {best_silhouette.smallest_share:.1%}")
        elif criterion == STABILITY:
            excluded.append(f"less stable ({best_silhouette.stability:.2f})")
        text += (
            f"; k = {best_silhouette.k} had the best silhouette ({best_silhouette.silhouette:.2f}) but "
            + ", ".join(excluded)
        )
    return text
