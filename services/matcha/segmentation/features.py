"""Per-customer features: the built-in RFM family derived from running aggregates, plus callers' own.

The store computes the raw built-in features in SQL at the tenant's reference time;
the quintile scores depend on the population, so their edges are computed once per
build and frozen with the segmentation version: a customer scored later is scored
against the same edges as the customers it is compared with.
"""

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

# Computed by the store, one column each.
RAW_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "average_basket",
    "inter_purchase_days",
    "trend",
    "visits_30d",
    "clicks_30d",
)
SCORE_FEATURES = ("rfm_recency_score", "rfm_frequency_score", "rfm_monetary_score", "rfm_score")
BUILT_IN_FEATURES = frozenset(RAW_FEATURES + SCORE_FEATURES)
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary")
CUSTOM_FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Score feature -> (raw feature it scores, whether a low raw value is the better one).
_SCORED = {
    "rfm_recency_score": ("recency_days", True),
    "rfm_frequency_score": ("frequency", False),
    "rfm_monetary_score": ("monetary", False),
}
QUINTILES = (20, 40, 60, 80)


@dataclass(frozen=True)
class FeatureTable:
    """Feature columns of customers, in the order of `keys` (the customers' store keys)."""

    keys: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.keys)

    def matrix(self, features: list[str]) -> np.ndarray:
        return np.column_stack([self.columns[name] for name in features]).astype(np.float64, copy=False)

    def subset(self, mask: np.ndarray) -> "FeatureTable":
        return FeatureTable(self.keys[mask], {name: values[mask] for name, values in self.columns.items()})


def quintile_edges(columns: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Edges of the RFM quintiles of a population; none when the built-in features were not loaded."""
    if "recency_days" not in columns:
        return {}
    return {
        raw: [float(edge) for edge in np.percentile(columns[raw], QUINTILES)] if len(columns[raw]) else [0.0] * 4
        for raw, _ in _SCORED.values()
    }


def with_scores(columns: dict[str, np.ndarray], edges: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Adds the RFM scores (1 to 5, 5 best) computed against the given quintile edges, if any."""
    scored = dict(columns)
    if not edges:
        return scored
    total = np.zeros(len(next(iter(columns.values()))), dtype=np.float64)
    for score, (raw, low_is_better) in _SCORED.items():
        # Ties at an edge fall to the worse quintile: a fifth of customers sharing the
        # oldest purchase date are all "least recent", not spread over two scores.
        side: Literal["left", "right"] = "right" if low_is_better else "left"
        above = np.searchsorted(np.asarray(edges[raw]), columns[raw], side=side).astype(np.float64)
        values = 5.0 - above if low_is_better else 1.0 + above
        scored[score] = values
        total += values
    scored["rfm_score"] = total
    return scored


def is_known_name(name: str) -> bool:
    return name in BUILT_IN_FEATURES or bool(CUSTOM_FEATURE_NAME.match(name))
