"""Drift between two populations: stability of each feature and migration between segments."""

import numpy as np

BINS = 10
# Keeps empty bins from making the index infinite.
_EPSILON = 1e-4


def population_stability(baseline: np.ndarray, target: np.ndarray) -> float:
    """PSI over the baseline's decile bins: sum((t - b) * ln(t / b)) over bin shares."""
    if not len(baseline) or not len(target):
        return 0.0
    edges = np.unique(np.percentile(baseline, np.linspace(0, 100, BINS + 1)[1:-1]))
    base_share = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=len(edges) + 1) / len(baseline)
    target_share = np.bincount(np.searchsorted(edges, target, side="right"), minlength=len(edges) + 1) / len(target)
    base_share = np.maximum(base_share, _EPSILON)
    target_share = np.maximum(target_share, _EPSILON)
    return float(np.sum((target_share - base_share) * np.log(target_share / base_share)))


def level(psi: float) -> int:
    """1 stable (< 0.1), 2 moderate (< 0.2), 3 significant; numbered as the contract's DriftLevel."""
    return 1 if psi < 0.1 else 2 if psi < 0.2 else 3


def migration(
    baseline_keys: np.ndarray,
    baseline_positions: np.ndarray,
    baseline_ids: list[str],
    target_keys: np.ndarray,
    target_positions: np.ndarray,
    target_ids: list[str],
) -> dict:
    """Migration matrix of the customers on both sides, segment shares, appeared and vanished segments."""
    common, base_index, target_index = np.intersect1d(baseline_keys, target_keys, return_indices=True)
    counts = np.zeros((len(baseline_ids), len(target_ids)), dtype=np.int64)
    np.add.at(counts, (baseline_positions[base_index], target_positions[target_index]), 1)
    base_sizes = np.bincount(baseline_positions, minlength=len(baseline_ids))
    target_sizes = np.bincount(target_positions, minlength=len(target_ids))
    base_share = dict(zip(baseline_ids, (base_sizes / max(len(baseline_keys), 1)).tolist(), strict=True))
    target_share = dict(zip(target_ids, (target_sizes / max(len(target_keys), 1)).tolist(), strict=True))
    present_before = {segment for segment, share in base_share.items() if share > 0}
    present_after = {segment for segment, share in target_share.items() if share > 0}
    every = list(dict.fromkeys([*baseline_ids, *target_ids]))
    return {
        "from_segment_ids": list(baseline_ids),
        "to_segment_ids": list(target_ids),
        "counts": counts.tolist(),
        "shifts": [(segment, base_share.get(segment, 0.0), target_share.get(segment, 0.0)) for segment in every],
        "appeared": [segment for segment in every if segment in present_after and segment not in present_before],
        "vanished": [segment for segment in every if segment in present_before and segment not in present_after],
        "common": len(common),
        "new": len(target_keys) - len(common),
        "departed": len(baseline_keys) - len(common),
    }
