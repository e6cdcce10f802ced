"""Recommendation scoring: popularity within the customer's segment, co-occurrence with the customer's
recent items, and content similarity between item vectors.

Plain numpy: the store reads the tenant's purchases as arrays (`PurchaseHistory`), and
`evidence_from_history` makes one customer's evidence from them. Every count leaves the customer out.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEGMENT_POPULARITY = "segment_popularity"
CO_OCCURRENCE = "co_occurrence"
CONTENT_SIMILARITY = "content_similarity"
GLOBAL_POPULARITY = "global_popularity"


@dataclass(frozen=True)
class Weights:
    """Defaults chosen on MovieLens-100k with the second-to-last item of each user held out (see
    docs/benchmarks.md): co-occurrence with recent items carries most of the signal."""

    popularity: float = 0.1
    co_occurrence: float = 1.0
    content: float = 0.1
    # A segment counts as this many extra customers who buy like the whole base: small segments
    # lean on global popularity, large ones on their own.
    shrinkage: float = 20.0
    # The k-th most recent item of the customer weighs decay**k: recent purchases say most.
    recency_decay: float = 0.7
    anchors: int = 20
    neighbours: int = 100


@dataclass(frozen=True)
class Evidence:
    """What one customer's recommendations are computed from; arrays are indexed like `items`."""

    items: list[str]
    owned: np.ndarray  # bool: items the customer has
    anchors: np.ndarray  # indices of the customer's most recent items, most recent first
    buyers: np.ndarray  # consenting customers who bought each item
    population: int  # consenting customers who bought any item
    segment_buyers: np.ndarray  # the same within the customer's segment (zeros without a segment)
    segment_size: int
    co_buyers: np.ndarray  # anchors x items: customers who bought both
    similarity: np.ndarray | None  # anchors x items: cosine to each anchor's nearest neighbours, 0 elsewhere


@dataclass(frozen=True)
class Reason:
    kind: str
    weight: float
    related_index: int = -1  # anchor the reason refers to (co-occurrence, content)
    count: int = 0  # customers behind a popularity or co-occurrence reason
    total: int = 0  # customers the count is out of (popularity)
    similarity: float = 0.0


@dataclass(frozen=True)
class Scored:
    index: int
    score: float
    reasons: list[Reason]


def _normalised(values: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, float]:
    top = float(values[allowed].max()) if allowed.any() else 0.0
    return (values / top if top > 0 else np.zeros_like(values)), top


def recommend(evidence: Evidence, allowed: np.ndarray, limit: int, weights: Weights = Weights()) -> list[Scored]:
    """The `limit` best allowed items with a positive score, best first, each with its reasons."""
    item_count = len(evidence.items)
    buyers = evidence.buyers.astype(np.float64)
    decay = weights.recency_decay ** np.arange(len(evidence.anchors), dtype=np.float64)

    blend = evidence.segment_size + weights.shrinkage
    segment_part = evidence.segment_buyers / blend
    global_part = weights.shrinkage / blend * buyers / max(evidence.population, 1)
    popularity, popularity_top = _normalised(segment_part + global_part, allowed)

    # Cosine between item buyer sets, weighted by the anchor's recency.
    if len(evidence.anchors):
        denominator = np.sqrt(np.outer(buyers[evidence.anchors], buyers))
        cosine = np.divide(evidence.co_buyers, denominator, out=np.zeros_like(denominator), where=denominator > 0)
        co_parts = decay[:, None] * cosine
    else:
        co_parts = np.zeros((0, item_count))
    co_occurrence, co_top = _normalised(co_parts.sum(axis=0), allowed)

    if evidence.similarity is not None and len(evidence.anchors):
        content_parts = decay[:, None] * np.maximum(evidence.similarity, 0) / decay.sum()
    else:
        content_parts = np.zeros((0, item_count))
    content, content_top = _normalised(content_parts.sum(axis=0), allowed)

    scores = weights.popularity * popularity + weights.co_occurrence * co_occurrence + weights.content * content
    scores = np.where(allowed, scores, -np.inf)
    # Best first; ties go to the more bought item, then to the smaller id, so results are stable.
    order = np.lexsort((np.asarray(evidence.items, dtype=object).astype(str), -buyers, -scores))
    chosen = [int(index) for index in order[:limit] if scores[index] > 0]

    results = []
    for index in chosen:
        reasons = []
        if popularity_top > 0:
            scale = weights.popularity / popularity_top
            if evidence.segment_size:
                count, total = int(evidence.segment_buyers[index]), evidence.segment_size
                reasons.append(Reason(SEGMENT_POPULARITY, scale * float(segment_part[index]), count=count, total=total))
            count, total = int(buyers[index]), evidence.population
            reasons.append(Reason(GLOBAL_POPULARITY, scale * float(global_part[index]), count=count, total=total))
        if co_top > 0:
            anchor = int(np.argmax(co_parts[:, index]))
            reasons.append(
                Reason(
                    CO_OCCURRENCE,
                    weights.co_occurrence * float(co_parts[:, index].sum()) / co_top,
                    related_index=int(evidence.anchors[anchor]),
                    count=int(evidence.co_buyers[anchor, index]),
                )
            )
        if content_top > 0:
            assert evidence.similarity is not None  # content scored only from similarities
            anchor = int(np.argmax(content_parts[:, index]))
            reasons.append(
                Reason(
                    CONTENT_SIMILARITY,
                    weights.content * float(content_parts[:, index].sum()) / content_top,
                    related_index=int(evidence.anchors[anchor]),
                    similarity=float(evidence.similarity[anchor, index]),
                )
            )
        # A signal that gave the item nothing is no reason.
        reasons = [reason for reason in reasons if reason.weight > 0]
        reasons.sort(key=lambda reason: -reason.weight)
        results.append(Scored(index, float(scores[index]), reasons))
    return results


def nearest_similarities(
    vectors: np.ndarray, present: np.ndarray, id_ranks: np.ndarray, anchors: np.ndarray, neighbours: int
) -> np.ndarray:
    """anchors x items: cosine of each anchor to its `neighbours` most similar other items with a vector;
    equal cosines go to the smaller item id (`id_ranks`), as in the store's query."""
    result = np.zeros((len(anchors), len(vectors)))
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors, dtype=np.float64), where=norms[:, None] > 0)
    for row, anchor in enumerate(anchors.tolist()):
        if not present[anchor]:
            continue
        cosine = unit @ unit[anchor]
        candidates = present.copy()
        candidates[anchor] = False
        order = np.lexsort((id_ranks, -cosine))
        top = order[candidates[order]][:neighbours]
        result[row, top] = cosine[top]
    return result


@dataclass(frozen=True)
class PurchaseHistory:
    """Purchases as arrays: per purchase the customer's index, the item's index in `items` and the time;
    per customer index its segment (-1: none); `customer` is the index of the customer recommended to.

    Read for one customer, only what its evidence needs is filled in: the times of its own purchases
    (NaN for the others'), and the segment of the customers in its own segment (-1 for all others)."""

    items: list[str]
    customers: np.ndarray
    item_indices: np.ndarray
    times: np.ndarray
    segments: np.ndarray
    customer: int

    def evidence(self, weights: Weights = Weights()) -> Evidence:
        return evidence_from_history(
            self.items, self.customers, self.item_indices, self.times, self.segments, self.customer, weights=weights
        )


@dataclass(frozen=True)
class BuyersByItem:
    """Who bought what in a tenant, among the customers eligible for one purpose: the items, sorted, and per
    purchase the buyer's key and the item's index. What a customer's history is made from, and what the
    store keeps between calls."""

    items: list[str]
    buyer_keys: np.ndarray
    item_indices: np.ndarray


def buyers_by_item(bought: list[tuple[str, Sequence[int]]]) -> BuyersByItem:
    """From (item, its buyers' keys) rows."""
    bought = sorted(bought)
    counts = [len(buyers) for _, buyers in bought]
    keys = np.fromiter((key for _, buyers in bought for key in buyers), dtype=np.int64, count=sum(counts))
    return BuyersByItem([item for item, _ in bought], keys, np.repeat(np.arange(len(bought), dtype=np.int32), counts))


def customer_history(
    buyers: BuyersByItem,
    own_times: dict[str, float],
    catalogue: list[str],
    customer_key: int,
    segment: tuple[int, Sequence[int]],
) -> PurchaseHistory:
    """The history of one customer: the others' purchases from `buyers`, its own (item -> latest time) from
    `own_times`, the catalogue's items nobody bought, and `segment`, the customer's segment position (-1:
    none) with the keys of that segment's members."""
    items = buyers.items + sorted((set(catalogue) | own_times.keys()) - set(buyers.items))
    item_index = {item: index for index, item in enumerate(items)}
    others = buyers.buyer_keys != customer_key
    own_items = list(own_times)
    keys = np.concatenate([buyers.buyer_keys[others], np.full(len(own_items), customer_key, dtype=np.int64)])
    item_indices = np.concatenate(
        [buyers.item_indices[others], np.array([item_index[item] for item in own_items], dtype=np.int64)]
    )
    times = np.concatenate([np.full(int(others.sum()), np.nan), [own_times[item] for item in own_items]])
    customer_keys, customers = np.unique(np.append(keys, customer_key), return_inverse=True)
    customer, customers = int(customers[-1]), customers[:-1]
    position, members = segment
    segments = np.full(len(customer_keys), -1, dtype=np.int64)
    if position >= 0:
        segments[np.isin(customer_keys, np.asarray(members, dtype=np.int64))] = position
        segments[customer] = position
    return PurchaseHistory(items, customers, item_indices, times, segments, customer)


def similarity_matrix(similar: list[tuple[str, str, float]], anchors: list[str], items: list[str]) -> np.ndarray:
    """anchors x items: the cosines of (anchor, item, cosine) rows, 0 elsewhere."""
    matrix = np.zeros((len(anchors), len(items)))
    anchor_rows = {anchor: row for row, anchor in enumerate(anchors)}
    columns = {item: column for column, item in enumerate(items)}
    for anchor, item, cosine in similar:
        matrix[anchor_rows[anchor], columns[item]] = cosine
    return matrix


def evidence_from_history(
    items: list[str],
    customers: np.ndarray,
    item_indices: np.ndarray,
    times: np.ndarray,
    segments: np.ndarray,
    customer: int,
    vectors: np.ndarray | None = None,
    weights: Weights = Weights(),
) -> Evidence:
    """The evidence of `customer` from purchase arrays (customer index, item index, time per purchase) and
    a segment per customer (-1: none). Content similarity from `vectors` (items x dimensions, NaN rows
    for items without one) ranks neighbours as the store's vector search does."""
    mine = customers == customer
    others = ~mine
    # Distinct (customer, item) pairs, as one sortable code each.
    codes = np.unique(customers[others].astype(np.int64) * len(items) + item_indices[others])
    other_customers, other_items = np.divmod(codes, len(items))
    buyers = np.bincount(other_items, minlength=len(items))
    population = len(np.unique(other_customers))
    segment = segments[customer]
    if segment >= 0:
        in_segment = segments[other_customers] == segment
        segment_buyers = np.bincount(other_items[in_segment], minlength=len(items))
        segment_size = len(np.unique(other_customers[in_segment]))
    else:
        segment_buyers, segment_size = np.zeros(len(items), dtype=np.int64), 0
    # Most recent purchase of each owned item, most recent first; ties by item id like the SQL.
    owned_items, owned_times = item_indices[mine], times[mine]
    latest: dict[int, float] = {}
    for item, when in zip(owned_items.tolist(), owned_times.tolist(), strict=True):
        latest[item] = max(when, latest.get(item, when))
    ordered = sorted(latest, key=lambda item: (-latest[item], items[item]))
    anchors = np.asarray(ordered[: weights.anchors], dtype=np.int64)
    owned = np.zeros(len(items), dtype=bool)
    owned[list(latest)] = True
    co_buyers = np.zeros((len(anchors), len(items)))
    by_customer = np.zeros(int(customers.max(initial=0)) + 1, dtype=bool)
    for row, anchor in enumerate(anchors.tolist()):
        by_customer[:] = False
        by_customer[other_customers[other_items == anchor]] = True
        co_buyers[row] = np.bincount(other_items[by_customer[other_customers]], minlength=len(items))
        co_buyers[row, anchor] = 0
    similarity = None
    if vectors is not None:
        present = np.isfinite(vectors).all(axis=1)
        id_ranks = np.argsort(np.argsort(np.asarray(items, dtype=str)))
        similarity = nearest_similarities(np.nan_to_num(vectors), present, id_ranks, anchors, weights.neighbours)
    return Evidence(
        items=items,
        owned=owned,
        anchors=anchors,
        buyers=buyers,
        population=population,
        segment_buyers=segment_buyers,
        segment_size=segment_size,
        co_buyers=co_buyers,
        similarity=similarity,
    )
