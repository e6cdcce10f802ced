"""Condition segments: the typed tree, its validation, its counters and its evaluation.

Plain Python. A tree is made of the node classes below, built by the servicer from the request
(fields as given, unchecked) and by `from_json` from storage. `validate` checks a tree and returns it
normalised (event conditions resolved to shared `CounterSpec`s); `evaluate` decides one customer from
the facts `Facts` gives it. Live evaluation and the full re-evaluation over past events both call
`evaluate`, so the two paths cannot disagree on what a condition means.
"""

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from matcha.runtime.errors import Violations

EVENT_TYPES = {1: "purchase", 2: "visit", 3: "click"}
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge")
# Stored aggregates a condition may test beside the caller's features.
STORED_FEATURES = ("purchases", "spend")
MAX_NODES = 256
MAX_DEPTH = 16
MAX_LIST = 1_000
MAX_SALT_CHARS = 64

Scalar = float | str | bool | None


@dataclass(frozen=True)
class Window:
    """`within` seconds before now, or the fixed period [start, end) in epoch seconds."""

    within: float | None = None
    start: float | None = None
    end: float | None = None

    def contains(self, time: float, now: float) -> bool:
        if self.within is not None:
            return time > now - self.within
        # Validation gives a window without `within` both ends.
        assert self.start is not None and self.end is not None
        return self.start <= time < self.end

    def earliest(self, now: float) -> float:
        """The time of the oldest event the window may hold at `now`."""
        if self.within is not None:
            return now - self.within
        assert self.start is not None  # validation gives a window without `within` both ends
        return self.start


@dataclass(frozen=True)
class CounterSpec:
    """What one per-customer counter counts: events of a type, item and amount range, in a window.

    Event conditions with the same spec share one counter, whatever their count or sum tests.
    """

    type: int
    item_ids: frozenset[str]
    amount_min: float | None
    amount_max: float | None
    window: Window
    # Counters are looked up for every event: the hash is computed once.
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.type, self.item_ids, self.amount_min, self.amount_max, self.window)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash

    def matches(self, item_id: str, amount: float) -> bool:
        if self.item_ids and item_id not in self.item_ids:
            return False
        if self.amount_min is not None and amount < self.amount_min:
            return False
        return self.amount_max is None or amount <= self.amount_max


@dataclass(frozen=True)
class AllOf:
    children: tuple = ()


@dataclass(frozen=True)
class AnyOf:
    children: tuple = ()


@dataclass(frozen=True)
class NotOf:
    child: Any = None


@dataclass(frozen=True)
class PropertyTest:
    path: str
    # One of OPERATORS with `value`, "in" with `values`, or "range" with `low`/`high`.
    operator: str
    value: Scalar = None
    values: tuple = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class EventTest:
    type: int
    item_ids: tuple[str, ...] = ()
    amount_min: float | None = None
    amount_max: float | None = None
    within_seconds: float | None = None
    start: float | None = None
    end: float | None = None
    min_count: int | None = None
    max_count: int | None = None
    sum_min: float | None = None
    sum_max: float | None = None
    not_occurred: bool = False
    # Set by `validate`.
    counter: CounterSpec | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MemberOf:
    segmentation: str
    segment_id: str = ""


@dataclass(frozen=True)
class Bucket:
    salt: str
    lower: int
    upper: int


@dataclass(frozen=True)
class Missing:
    """A node whose `kind` the request left unset."""


Node = AllOf | AnyOf | NotOf | PropertyTest | EventTest | MemberOf | Bucket | Missing


class Facts(Protocol):
    """What evaluating one customer may ask: counters, properties, other memberships, its id."""

    customer_id: str

    def counter(self, spec: CounterSpec) -> tuple[int, float]: ...

    def property(self, path: str) -> Scalar: ...

    def member(self, segmentation: str, segment_id: str) -> bool: ...


@dataclass
class Catalogue:
    """What validation checks names against, for the defining tenant."""

    attribute_keys: Callable[[str], bool]
    feature_names: Callable[[str], bool]
    # segmentation name -> its segment ids (latest READY version) for built segmentations
    built_segments: dict[str, set[str]]
    # condition segment name -> names it refers to (latest versions), without the one being defined
    condition_references: dict[str, set[str]]
    retention_seconds: float
    now: float


def validate(node: Node, path: str, catalogue: Catalogue, violations: Violations, name: str) -> Node:
    """Checks the tree defining segment `name`; returns it with counters resolved."""
    count = sum(1 for _ in walk(node))
    violations.check(count <= MAX_NODES, path, f"at most {MAX_NODES} nodes (got {count})")
    if depth(node) > MAX_DEPTH:
        violations.add(path, f"at most {MAX_DEPTH} levels deep")
        return node
    checked = _validate(node, path, catalogue, violations)
    references = {ref.segmentation for ref in walk(node) if isinstance(ref, MemberOf) and not ref.segment_id}
    cycle = _cycle(name, references, catalogue.condition_references)
    if cycle:
        violations.add(path, "cyclic segment reference: " + " -> ".join(cycle))
    return checked


def _validate(node: Node, path: str, catalogue: Catalogue, violations: Violations) -> Node:
    if isinstance(node, AllOf | AnyOf):
        key = "all" if isinstance(node, AllOf) else "any"
        violations.check(bool(node.children), f"{path}.{key}.conditions", "at least one condition")
        children = tuple(
            _validate(child, f"{path}.{key}.conditions[{index}]", catalogue, violations)
            for index, child in enumerate(node.children)
        )
        return replace(node, children=children)
    if isinstance(node, NotOf):
        return NotOf(_validate(node.child, f"{path}.not", catalogue, violations))
    if isinstance(node, PropertyTest):
        _check_property(node, f"{path}.property", catalogue, violations)
        return node
    if isinstance(node, EventTest):
        return _check_event(node, f"{path}.event", catalogue, violations)
    if isinstance(node, MemberOf):
        _check_reference(node, f"{path}.member_of", catalogue, violations)
        return node
    if isinstance(node, Bucket):
        where = f"{path}.bucket"
        violations.check(len(node.salt) <= MAX_SALT_CHARS, f"{where}.salt", f"at most {MAX_SALT_CHARS} characters")
        violations.check("\x00" not in node.salt, f"{where}.salt", "must not hold a NUL character")
        violations.check(0 <= node.lower <= 99, f"{where}.lower", "0 to 99")
        violations.check(node.lower < node.upper <= 100, f"{where}.upper", "above lower, at most 100")
        return node
    violations.add(path, "one of all, any, not, property, event, member_of or bucket is required")
    return node


def _check_property(node: PropertyTest, where: str, catalogue: Catalogue, violations: Violations) -> None:
    scope, _, key = node.path.partition(".")
    if scope == "attributes" and key:
        violations.check(catalogue.attribute_keys(key), f"{where}.property", f"unknown attribute {key!r}")
    elif scope == "features" and key:
        known = key in STORED_FEATURES or catalogue.feature_names(key)
        violations.check(known, f"{where}.property", f"unknown feature {key!r}")
    else:
        violations.add(f"{where}.property", "'attributes.<key>' or 'features.<name>'")
    numeric_only = scope == "features"
    if node.operator in OPERATORS:
        if not _check_scalar(node.value, f"{where}.compare.value", violations):
            return
        if node.operator in ("lt", "le", "gt", "ge") or numeric_only:
            violations.check(
                isinstance(node.value, float), f"{where}.compare.value", "a number for this operator or a feature"
            )
    elif node.operator == "in":
        if violations.check(0 < len(node.values) <= MAX_LIST, f"{where}.in_list.values", f"1 to {MAX_LIST} values"):
            for index, value in enumerate(node.values):
                _check_scalar(value, f"{where}.in_list.values[{index}]", violations)
    elif node.operator == "range":
        bounds = [bound for bound in (node.low, node.high) if bound is not None]
        violations.check(bool(bounds), f"{where}.range", "min, max or both")
        violations.check(all(math.isfinite(bound) for bound in bounds), f"{where}.range", "finite bounds")
        if node.low is not None and node.high is not None:
            violations.check(node.low <= node.high, f"{where}.range.max", "at least min")
    elif node.operator == "unspecified":
        violations.add(f"{where}.compare.operator", "eq, ne, lt, le, gt or ge")
    else:
        violations.add(where, "one of compare, in_list or range is required")


def _check_scalar(value: Scalar, where: str, violations: Violations) -> bool:
    if value is None:
        violations.add(where, "number, text or flag is required")
        return False
    if isinstance(value, float) and not math.isfinite(value):
        violations.add(where, "must be a finite number")
        return False
    if isinstance(value, str) and "\x00" in value:
        violations.add(where, "must not hold a NUL character")
        return False
    return True


def _check_range(low: float | None, high: float | None, where: str, violations: Violations) -> None:
    for bound in (low, high):
        if bound is not None and not math.isfinite(bound):
            violations.add(where, "finite bounds")
            return
    if low is not None and high is not None:
        violations.check(low <= high, f"{where}.max", "at least min")


def _check_event(node: EventTest, where: str, catalogue: Catalogue, violations: Violations) -> EventTest:
    violations.check(node.type in EVENT_TYPES, f"{where}.type", "purchase, visit or click")
    violations.check(len(node.item_ids) <= MAX_LIST, f"{where}.item_ids", f"at most {MAX_LIST} items")
    for index, item in enumerate(node.item_ids):
        violations.check(bool(item) and "\x00" not in item, f"{where}.item_ids[{index}]", "non-empty, no NUL")
    _check_range(node.amount_min, node.amount_max, f"{where}.amount", violations)
    _check_range(node.sum_min, node.sum_max, f"{where}.amount_sum", violations)
    retention = catalogue.retention_seconds
    if node.within_seconds is not None:
        if not node.within_seconds > 0:
            violations.add(f"{where}.within", "must be positive")
        elif node.within_seconds > retention:
            violations.add(f"{where}.within", f"at most the event retention ({retention / 86_400:g} days)")
        window = Window(within=node.within_seconds)
    elif node.start is not None and node.end is not None:
        violations.check(node.end > node.start, f"{where}.between.end", "after start")
        violations.check(
            node.start >= catalogue.now - retention,
            f"{where}.between.start",
            f"within the event retention ({retention / 86_400:g} days)",
        )
        window = Window(start=node.start, end=node.end)
    else:
        violations.add(f"{where}.within", "a window is required: within, or between with start and end")
        return node
    for name, value in (("min_count", node.min_count), ("max_count", node.max_count)):
        violations.check(value is None or value >= 0, f"{where}.{name}", "0 or more")
    if node.min_count is not None and node.max_count is not None:
        violations.check(node.min_count <= node.max_count, f"{where}.max_count", "at least min_count")
    tested = node.min_count is not None or node.max_count is not None or node.sum_min is not None
    tested = tested or node.sum_max is not None
    violations.check(not (node.not_occurred and tested), f"{where}.not_occurred", "excludes counts and sums")
    spec = CounterSpec(node.type, frozenset(node.item_ids), node.amount_min, node.amount_max, window)
    return replace(node, counter=spec)


def _check_reference(node: MemberOf, where: str, catalogue: Catalogue, violations: Violations) -> None:
    if node.segment_id:
        segments = catalogue.built_segments.get(node.segmentation)
        if segments is None:
            violations.add(f"{where}.segmentation", f"no READY segmentation {node.segmentation!r}")
        else:
            violations.check(node.segment_id in segments, f"{where}.segment_id", f"unknown segment {node.segment_id!r}")
    else:
        violations.check(
            node.segmentation in catalogue.condition_references,
            f"{where}.segmentation",
            f"unknown condition segment {node.segmentation!r} (name segment_id for a built segmentation)",
        )


def _cycle(name: str, references: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The first chain of condition segment references that leads back to `name`, if any."""
    stack = [(ref, [name, ref]) for ref in sorted(references)]
    seen = set()
    while stack:
        current, chain = stack.pop()
        if current == name:
            return chain
        if current in seen:
            continue
        seen.add(current)
        stack.extend((ref, [*chain, ref]) for ref in sorted(graph.get(current, ())))
    return []


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, AllOf | AnyOf):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, NotOf) and node.child is not None:
        yield from walk(node.child)


def depth(node: Node) -> int:
    if isinstance(node, AllOf | AnyOf):
        return 1 + max((depth(child) for child in node.children), default=0)
    if isinstance(node, NotOf):
        return 1 + depth(node.child)
    return 1


def counters(node: Node) -> set[CounterSpec]:
    return {n.counter for n in walk(node) if isinstance(n, EventTest) and n.counter is not None}


def properties(node: Node) -> set[str]:
    return {n.path for n in walk(node) if isinstance(n, PropertyTest)}


def references(node: Node) -> set[tuple[str, str]]:
    return {(n.segmentation, n.segment_id) for n in walk(node) if isinstance(n, MemberOf)}


def bucket(salt: str, customer_id: str) -> int:
    digest = hashlib.blake2b(f"{salt}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def evaluate(node: Node, facts: Facts) -> bool:
    if isinstance(node, AllOf):
        return all(evaluate(child, facts) for child in node.children)
    if isinstance(node, AnyOf):
        return any(evaluate(child, facts) for child in node.children)
    if isinstance(node, NotOf):
        return not evaluate(node.child, facts)
    if isinstance(node, EventTest):
        assert node.counter is not None  # set by `validate` and `from_json`
        count, total = facts.counter(node.counter)
        if node.not_occurred:
            return count == 0
        if node.min_count is not None and count < node.min_count:
            return False
        if node.max_count is not None and count > node.max_count:
            return False
        if node.sum_min is not None and total < node.sum_min:
            return False
        if node.sum_max is not None and total > node.sum_max:
            return False
        untested = node.min_count is None and node.max_count is None and node.sum_min is None
        return not (untested and node.sum_max is None and count < 1)
    if isinstance(node, PropertyTest):
        return _test_property(node, facts.property(node.path))
    if isinstance(node, MemberOf):
        return facts.member(node.segmentation, node.segment_id)
    if isinstance(node, Bucket):
        return node.lower <= bucket(node.salt, facts.customer_id) < node.upper
    return False


def _same(left: Scalar, right: Scalar) -> bool:
    # JSON numbers arrive as int or float; booleans are not numbers here.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    return left == right


def _test_property(node: PropertyTest, value: Scalar) -> bool:
    if node.operator == "ne":
        return value is None or not _same(value, node.value)
    if value is None:
        return False
    if node.operator == "eq":
        return _same(value, node.value)
    if node.operator == "in":
        return any(_same(value, candidate) for candidate in node.values)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    number = float(value)
    if node.operator == "range":
        return (node.low is None or number >= node.low) and (node.high is None or number <= node.high)
    bound = node.value
    assert isinstance(bound, float)  # `validate` requires a number for these operators
    return {"lt": number < bound, "le": number <= bound, "gt": number > bound, "ge": number >= bound}[node.operator]


# --- storage form ------------------------------------------------------------------------------


def to_json(node: Node) -> dict[str, Any]:
    if isinstance(node, AllOf | AnyOf):
        return {"all" if isinstance(node, AllOf) else "any": [to_json(child) for child in node.children]}
    if isinstance(node, NotOf):
        return {"not": to_json(node.child)}
    if isinstance(node, PropertyTest):
        document: dict[str, Any] = {"path": node.path, "operator": node.operator}
        if node.operator in OPERATORS:
            document["value"] = node.value
        elif node.operator == "in":
            document["values"] = list(node.values)
        else:
            document |= {"low": node.low, "high": node.high}
        return {"property": document}
    if isinstance(node, EventTest):
        fields = ("type", "amount_min", "amount_max", "within_seconds", "start", "end", "min_count", "max_count")
        document = {name: getattr(node, name) for name in (*fields, "sum_min", "sum_max", "not_occurred")}
        return {"event": document | {"item_ids": list(node.item_ids)}}
    if isinstance(node, MemberOf):
        return {"member_of": {"segmentation": node.segmentation, "segment_id": node.segment_id}}
    if isinstance(node, Bucket):
        return {"bucket": {"salt": node.salt, "lower": node.lower, "upper": node.upper}}
    raise ValueError("an unset node is never stored")


def from_json(document: dict[str, Any]) -> Node:
    """The stored tree, with counters resolved (it was validated when stored)."""
    ((kind, body),) = document.items()
    if kind in ("all", "any"):
        children = tuple(from_json(child) for child in body)
        return AllOf(children) if kind == "all" else AnyOf(children)
    if kind == "not":
        return NotOf(from_json(body))
    if kind == "property":
        return PropertyTest(
            body["path"],
            body["operator"],
            body.get("value"),
            tuple(body.get("values", ())),
            body.get("low"),
            body.get("high"),
        )
    if kind == "event":
        node = EventTest(**(body | {"item_ids": tuple(body["item_ids"])}))
        window = Window(within=node.within_seconds, start=node.start, end=node.end)
        spec = CounterSpec(node.type, frozenset(node.item_ids), node.amount_min, node.amount_max, window)
        return replace(node, counter=spec)
    if kind == "member_of":
        return MemberOf(body["segmentation"], body["segment_id"])
    return Bucket(body["salt"], body["lower"], body["upper"])
