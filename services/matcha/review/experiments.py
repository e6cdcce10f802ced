"""Experiments: stable assignment with a holdout, outcome ingestion, results, promotion.

Variants are approved items made into an experiment before publication (its audience resolved at creation, each item
then published to its own arm), or publications measured after the fact.

Plain Python like the rest of the core: outcomes and arms are the contract's names without prefix
("CONVERTED", "holdout"); the servicer converts at the edge.
"""

import hashlib
import hmac
import math
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from matcha.review.audiences import (
    AudienceSpec,
    ResolvedAudience,
    SegmentationMembers,
    channel_name,
    check_audience,
    write_experiment_audience,
)
from matcha.review.experiment_store import (
    AutoPromotionRule,
    ExperimentRow,
    ExperimentStore,
    ItemState,
    NewExperiment,
    OutcomeBatch,
    ResolvedEvent,
    VariantRow,
)
from matcha.runtime import page_tokens
from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, Violations
from matcha.runtime.governance import CallContext

HOLDOUT = "holdout"
OUTCOMES = ("DELIVERED", "OPENED", "CLICKED", "CONVERTED", "UNSUBSCRIBED")
DEFAULT_OUTCOME = "CONVERTED"
# z of a two-sided 95% interval.
Z_95 = 1.959963984540054
PROBABILITY_DRAWS = 20_000
# Fixed, so the same counts always give the same probabilities.
PROBABILITY_SEED = 20_160_516
# Refusals listed one by one; the rest are counted.
MAX_LISTED_REFUSALS = 100
# Promoter subject of a variant its experiment's rule promoted.
AUTO_PROMOTER = "auto-promotion"
DEFAULT_AUTO_PROMOTE_PROBABILITY = 0.95
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True)
class ExperimentLimits:
    default_holdout_share: float = 0.10
    max_holdout_share: float = 0.5
    default_min_sample_per_arm: int = 100
    max_variants: int = 20
    max_label_chars: int = 64
    max_name_chars: int = 200
    max_customers_per_call: int = 100_000
    max_customer_id_chars: int = 256
    max_events_per_call: int = 10_000
    max_event_id_chars: int = 256
    default_page_size: int = 50
    max_page_size: int = 200
    default_bucket: timedelta = timedelta(days=1)
    min_bucket: timedelta = timedelta(minutes=1)
    max_bucket: timedelta = timedelta(days=366)
    max_buckets: int = 1_000


@dataclass(frozen=True)
class NewExperimentInput:
    experiment_id: str
    name: str
    variants: list[VariantRow]
    holdout_share: float | None
    min_sample_per_arm: int
    customer_ids: list[str]
    # A publication whose stored audience joins the experiment's.
    audience_publication_id: str = ""
    # Variants named by item: their audience, resolved at creation.
    audience: AudienceSpec | None = None
    # As given: 0 for the default probability, "" for the default outcome.
    auto_promote: AutoPromotionRule | None = None


@dataclass(frozen=True)
class OutcomeInput:
    event_id: str
    experiment_id: str
    publication_id: str
    customer_id: str
    outcome: str
    value: float
    at: datetime | None


@dataclass(frozen=True)
class OutcomeRate:
    outcome: str
    customers: int
    events: int
    rate: float
    ci_low: float
    ci_high: float
    value_sum: float


@dataclass(frozen=True)
class ArmResult:
    arm: str
    publication_id: str
    audience: int
    outcomes: list[OutcomeRate]
    lift: float | None
    lift_absolute: float | None
    probability_best: float

    @property
    def holdout(self) -> bool:
        return self.arm == HOLDOUT


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    end: datetime
    # Cumulative: customers whose first outcome came before `end`.
    customers: int
    rate: float


@dataclass(frozen=True)
class CampaignResults:
    experiment: ExperimentRow
    outcome: str
    arms: list[ArmResult]
    minimum_sample_reached: bool
    # Per arm (in the order of `arms`) when asked for.
    series: dict[str, list[SeriesPoint]] | None = None
    # The promoted variant's review item; empty until promoted.
    winner_item_id: str = ""


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass
class _Refusals:
    unknown: int = 0
    not_in_audience: int = 0
    wrong_arm: int = 0
    violations: Violations = field(default_factory=Violations)

    def add(self, kind: str, field_path: str, description: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.violations.items) < MAX_LISTED_REFUSALS:
            self.violations.add(field_path, description)

    @property
    def total(self) -> int:
        return self.unknown + self.not_in_audience + self.wrong_arm


class ArmAssigner:
    """Assigns customers of one experiment to arms: a keyed hash of (experiment, customer) read as a uniform number in
    [0, 1); the first `holdout_share` of the interval is the holdout, the rest is split evenly between the variants.
    The HMAC state after the key and the experiment id is computed once and copied per customer (a million
    customers are assigned in about a second)."""

    def __init__(self, hash_key: bytes, experiment_id: str, labels: list[str], holdout_share: float) -> None:
        self._prefix = hmac.new(hash_key, f"{experiment_id}\0".encode(), hashlib.sha256)
        self._labels = labels
        self._share = holdout_share

    def __call__(self, customer_id: str) -> str:
        digest = self._prefix.copy()
        digest.update(customer_id.encode())
        point = int.from_bytes(digest.digest()[:8], "big") / 2**64
        if point < self._share:
            return HOLDOUT
        index = int((point - self._share) / (1 - self._share) * len(self._labels))
        return self._labels[min(index, len(self._labels) - 1)]


def assign_arm(hash_key: bytes, experiment_id: str, customer_id: str, labels: list[str], holdout_share: float) -> str:
    """One customer's arm (see ArmAssigner)."""
    return ArmAssigner(hash_key, experiment_id, labels, holdout_share)(customer_id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


EXPERIMENTS_LISTING = page_tokens.listing_key("experiments")


def _experiment_position(violations: Violations, position) -> tuple[datetime, str] | None:
    """The (creation time, id) a ListExperiments page starts after."""
    if position is None:
        return None
    try:
        created, experiment_id = position
        return datetime.fromisoformat(created), str(experiment_id)
    except (ValueError, TypeError):
        violations.add("page_token", page_tokens.INVALID)
        return None


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when nothing was observed."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def probability_best(counts: list[tuple[int, int]], draws: int = PROBABILITY_DRAWS) -> list[float]:
    """For (successes, trials) per arm: the share of joint draws from Beta(1 + s, 1 + t - s) posteriors in which
    each arm has the highest rate."""
    if not counts:
        return []
    generator = np.random.default_rng(PROBABILITY_SEED)
    samples = np.stack(
        [generator.beta(1 + successes, 1 + trials - successes, size=draws) for successes, trials in counts]
    )
    wins = np.bincount(samples.argmax(axis=0), minlength=len(counts))
    return [float(value) / draws for value in wins]


class ExperimentCore:
    def __init__(
        self,
        store: ExperimentStore,
        limits: ExperimentLimits | None = None,
        *,
        audiences: SegmentationMembers | None = None,
    ) -> None:
        self._store = store
        self.limits = limits or ExperimentLimits()
        self._audiences = audiences or SegmentationMembers(None)

    async def create(
        self, call: CallContext, request: NewExperimentInput
    ) -> tuple[ExperimentRow, ResolvedAudience | None]:
        """The experiment, and the audience resolved for variants named by item."""
        if call.idempotency_key:
            earlier = await self._store.created_with_key(call.tenant, call.idempotency_key)
            if earlier is not None:
                return (
                    await self._store.get(call.tenant, earlier),
                    await self._store.resolved_audience(call.tenant, earlier),
                )
        limits = self.limits
        violations = Violations()
        if request.experiment_id:
            violations.check(
                bool(_EXPERIMENT_ID.match(request.experiment_id)),
                "experiment_id",
                "1 to 128 letters, digits, '.', '_' or '-'",
            )
        violations.check(
            len(request.name) <= limits.max_name_chars, "name", f"at most {limits.max_name_chars} characters"
        )
        violations.check(
            0 < len(request.variants) <= limits.max_variants, "variants", f"1 to {limits.max_variants} variants"
        )
        labels: set[str] = set()
        for index, variant in enumerate(request.variants):
            path = f"variants[{index}]"
            if violations.check(
                0 < len(variant.label) <= limits.max_label_chars,
                f"{path}.label",
                f"1 to {limits.max_label_chars} characters",
            ):
                violations.check(variant.label != HOLDOUT, f"{path}.label", f"{HOLDOUT!r} names the control group")
                violations.check(variant.label not in labels, f"{path}.label", "used by another variant")
            labels.add(variant.label)
            violations.check(
                bool(variant.publication_id) != bool(variant.item_id),
                f"{path}.publication_id",
                "a publication id or an item id, one of them",
            )
            if variant.item_id:
                violations.check(_is_uuid(variant.item_id), f"{path}.item_id", "no such item")
        by_item = [variant for variant in request.variants if variant.item_id]
        if by_item:
            violations.check(
                len(by_item) == len(request.variants),
                "variants",
                "variants name either items (delivered per arm) or publications, not both",
            )
            if request.audience is None:
                violations.add("audience", "required with variants named by item: a segment or customers")
            else:
                check_audience(violations, request.audience, arm_allowed=False)
            for name, given in (
                ("customer_ids", request.customer_ids),
                ("audience_publication_id", request.audience_publication_id),
            ):
                violations.check(
                    not given, name, "the audience of variants named by item is `audience`, resolved for their purpose"
                )
        else:
            violations.check(
                request.audience is None, "audience", "resolved for variants named by item only (`item_id`)"
            )
        share = limits.default_holdout_share if request.holdout_share is None else request.holdout_share
        violations.check(0 <= share <= limits.max_holdout_share, "holdout_share", f"0 to {limits.max_holdout_share}")
        violations.check(request.min_sample_per_arm >= 0, "min_sample_per_arm", "must not be negative")
        self._check_customers(violations, request.customer_ids, required=False)
        rule = request.auto_promote
        if rule is not None:
            threshold = rule.min_probability_best
            violations.check(
                threshold == 0 or (math.isfinite(threshold) and 0.5 < threshold <= 1),
                "auto_promote.min_probability_best",
                f"more than 0.5 and at most 1; {DEFAULT_AUTO_PROMOTE_PROBABILITY} when 0",
            )
            violations.check(rule.outcome in ("", *OUTCOMES), "auto_promote.outcome", f"one of {', '.join(OUTCOMES)}")
            rule = AutoPromotionRule(threshold or DEFAULT_AUTO_PROMOTE_PROBABILITY, rule.outcome or DEFAULT_OUTCOME)
        violations.raise_if_any("experiment has invalid fields")
        if by_item:
            return await self._create_before_publication(call, request, share, rule)

        audience: list[str] = []
        if request.audience_publication_id:
            stored = await self._store.audience_members(call.tenant, request.audience_publication_id)
            violations.check(
                stored is not None, "audience_publication_id", "no audience is stored with this publication"
            )
            audience = stored or []
        publication_ids = [variant.publication_id for variant in request.variants]
        known, taken = await self._store.publications_taken(call.tenant, publication_ids)
        for index, publication_id in enumerate(publication_ids):
            path = f"variants[{index}].publication_id"
            if violations.check(publication_id in known, path, "no such publication"):
                violations.check(publication_id not in taken, path, "already a variant of another experiment")
            violations.check(publication_ids.index(publication_id) == index, path, "used by another variant")
        violations.raise_if_any("experiment names publications it cannot use")

        experiment_id = request.experiment_id or str(uuid.uuid4())
        await self._store.create(
            call.tenant,
            NewExperiment(
                id=experiment_id,
                name=request.name,
                hash_key=secrets.token_bytes(32),
                holdout_share=share,
                min_sample_per_arm=request.min_sample_per_arm or limits.default_min_sample_per_arm,
                creator=call.principal.subject,
                data_class=int(call.data_class),
                purpose=call.purpose,
                variants=list(request.variants),
                idempotency_key=call.idempotency_key or None,
                auto_promote=rule,
            ),
        )
        experiment = await self._store.get(call.tenant, experiment_id)
        members = [*request.customer_ids, *audience]
        if members:
            for start in range(0, len(members), limits.max_customers_per_call):
                await self._add_members(call, experiment, members[start : start + limits.max_customers_per_call])
            experiment = await self._store.get(call.tenant, experiment_id)
        return experiment, None

    async def _create_before_publication(
        self, call: CallContext, request: NewExperimentInput, share: float, rule: AutoPromotionRule | None
    ) -> tuple[ExperimentRow, ResolvedAudience]:
        """Variants named by approved items: the items are checked under their row locks, and the audience is
        resolved with segmentation for their purpose and channel and stored with each member's arm, all in one
        transaction."""
        self._audiences.check_configured()
        audience = request.audience
        assert audience is not None  # required with variants named by item, checked by create
        experiment_id = request.experiment_id or str(uuid.uuid4())
        hash_key = secrets.token_bytes(32)
        labels = [variant.label for variant in request.variants]
        # Set by the item check, read by the audience's resolution (same transaction, in that order).
        chosen: dict[str, str] = {}

        def check_items(items: list[ItemState]) -> None:
            found = {item.id: item for item in items}
            violations = Violations()
            for index, variant in enumerate(request.variants):
                path = f"variants[{index}].item_id"
                item = found.get(variant.item_id)
                if item is None:
                    violations.add(path, "no such item")
                    continue
                if not violations.check(item.status == "APPROVED", path, f"the item is {item.status}, not APPROVED"):
                    continue
                violations.check(not item.published, path, "already published: name its publication instead")
                violations.check(not item.in_experiment, path, "already a variant of another experiment")
                violations.check(
                    [v.item_id for v in request.variants].index(variant.item_id) == index,
                    path,
                    "used by another variant",
                )
                first = found.get(request.variants[0].item_id)
                if first is not None and index > 0:
                    violations.check(item.channel == first.channel, path, f"not on {first.channel}, like variants[0]")
                    violations.check(
                        item.purpose == first.purpose, path, f"submitted for {item.purpose!r}, not {first.purpose!r}"
                    )
                chosen.setdefault("channel", item.channel)
                chosen.setdefault("purpose", item.purpose)
            violations.raise_if_any("experiment names items it cannot use")

        async def fill(connection) -> ResolvedAudience:
            channel = channel_name(chosen["channel"])
            # The items' purpose and channel: the audience is resolved for them, and outcomes are fed on for it.
            await connection.execute(
                "UPDATE review_experiments SET purpose = $3, channel = $4 WHERE tenant = $1 AND id = $2",
                call.tenant,
                experiment_id,
                chosen["purpose"],
                chosen["channel"],
            )
            return await write_experiment_audience(
                connection,
                tenant=call.tenant,
                experiment_id=experiment_id,
                channel=channel,
                purpose=chosen["purpose"],
                spec=audience,
                members=self._audiences.stream(call, chosen["purpose"], audience, channel),
                arm_of=ArmAssigner(hash_key, experiment_id, labels, share),
            )

        resolved = await self._store.create(
            call.tenant,
            NewExperiment(
                id=experiment_id,
                name=request.name,
                hash_key=hash_key,
                holdout_share=share,
                min_sample_per_arm=request.min_sample_per_arm or self.limits.default_min_sample_per_arm,
                creator=call.principal.subject,
                data_class=int(call.data_class),
                purpose=call.purpose,
                variants=list(request.variants),
                idempotency_key=call.idempotency_key or None,
                auto_promote=rule,
            ),
            check_items=check_items,
            fill=fill,
        )
        assert resolved is not None  # what `fill` stored
        return await self._store.get(call.tenant, experiment_id), resolved

    async def assign(
        self, call: CallContext, experiment_id: str, customer_ids: list[str]
    ) -> tuple[list[tuple[str, str]], int]:
        violations = Violations()
        self._check_customers(violations, customer_ids, required=True)
        violations.raise_if_any("assignment has invalid fields")
        experiment = await self._store.get(call.tenant, experiment_id)
        if experiment.delivered_per_arm:
            # Its audience was resolved with consent at creation: nobody joins it later.
            recorded = await self._store.recorded_arms(call.tenant, experiment_id, customer_ids)
            return [(customer, recorded.get(customer, "")) for customer in dict.fromkeys(customer_ids)], 0
        return await self._add_members(call, experiment, customer_ids)

    async def _add_members(
        self, call: CallContext, experiment: ExperimentRow, customer_ids: list[str]
    ) -> tuple[list[tuple[str, str]], int]:
        distinct = list(dict.fromkeys(customer_ids))
        assigner = ArmAssigner(
            experiment.hash_key,
            experiment.id,
            [variant.label for variant in experiment.variants],
            experiment.holdout_share,
        )
        arms = [assigner(customer) for customer in distinct]
        recorded, added = await self._store.add_members(call.tenant, experiment.id, distinct, arms)
        return [(customer, recorded[customer]) for customer in distinct], added

    async def ingest(self, call: CallContext, events: list[OutcomeInput]) -> IngestResult:
        limits = self.limits
        violations = Violations()
        violations.check(
            0 < len(events) <= limits.max_events_per_call, "events", f"1 to {limits.max_events_per_call} events"
        )
        for index, event in enumerate(events[: limits.max_events_per_call]):
            path = f"events[{index}]"
            violations.check(
                0 < len(event.event_id) <= limits.max_event_id_chars,
                f"{path}.event_id",
                f"1 to {limits.max_event_id_chars} characters",
            )
            violations.check(
                bool(event.experiment_id or event.publication_id),
                f"{path}.experiment_id",
                "experiment or publication required",
            )
            violations.check(bool(event.customer_id), f"{path}.customer_id", "must not be empty")
            violations.check(event.outcome in OUTCOMES, f"{path}.type", f"one of {', '.join(OUTCOMES)}")
            if event.outcome == "CONVERTED":
                violations.check(math.isfinite(event.value) and event.value >= 0, f"{path}.value", "0 or more")
            else:
                violations.check(event.value == 0, f"{path}.value", "a value belongs to CONVERTED events only")
            if len(violations.items) >= MAX_LISTED_REFUSALS:
                break
        violations.raise_if_any("outcome events have invalid fields")

        now = datetime.now(UTC)

        def accept(resolved: list[ResolvedEvent]) -> OutcomeBatch:
            refusals = _Refusals()
            experiment_ids: list[str] = []
            arms: list[str] = []
            for index, (event, where) in enumerate(zip(events, resolved, strict=True)):
                path = f"events[{index}]"
                if event.publication_id and where.publication_experiment_id is None:
                    refusals.add("unknown", f"{path}.publication_id", "no experiment has this publication")
                elif where.experiment_id is None:
                    refusals.add("unknown", f"{path}.experiment_id", "unknown experiment")
                elif where.publication_experiment_id not in (None, where.experiment_id):
                    refusals.add("unknown", f"{path}.publication_id", "the publication is in another experiment")
                elif where.arm is None:
                    refusals.add("not_in_audience", f"{path}.customer_id", "not in the experiment's audience")
                elif where.publication_variant not in (None, where.arm):
                    refusals.add(
                        "wrong_arm",
                        f"{path}.publication_id",
                        f"the customer is in arm {where.arm!r}, not variant {where.publication_variant!r}",
                    )
                else:
                    experiment_ids.append(where.experiment_id)
                    arms.append(where.arm)
            if refusals.total:
                raise InvalidArgument(
                    f"{refusals.total} of {len(events)} outcome events refused ({refusals.unknown} for unknown "
                    f"experiments or publications, {refusals.not_in_audience} for customers outside the audience, "
                    f"{refusals.wrong_arm} for another arm's publication); nothing was stored",
                    violations=refusals.violations.items,
                    reason="OUTCOMES_REFUSED",
                    metadata={
                        "refused": str(refusals.total),
                        "unknown_experiment": str(refusals.unknown),
                        "not_in_audience": str(refusals.not_in_audience),
                        "wrong_arm": str(refusals.wrong_arm),
                    },
                )
            return OutcomeBatch(
                event_ids=[event.event_id for event in events],
                experiment_ids=experiment_ids,
                customer_ids=[event.customer_id for event in events],
                arms=arms,
                outcomes=[event.outcome for event in events],
                values=[event.value for event in events],
                times=[event.at or now for event in events],
            )

        inserted, to_judge = await self._store.ingest(
            call.tenant,
            [event.experiment_id for event in events],
            [event.publication_id for event in events],
            [event.customer_id for event in events],
            accept,
        )
        for experiment_id in to_judge:
            await self._auto_promote(call, experiment_id)
        return IngestResult(accepted=inserted, duplicates=len(events) - inserted)

    async def _auto_promote(self, call: CallContext, experiment_id: str) -> None:
        """Promotes the variant the experiment's rule designates, if any: every arm at the minimum sample and one
        variant's probability of being best at least the rule's (more than 0.5, so one variant at most)."""
        rule = (await self._store.get(call.tenant, experiment_id)).auto_promote
        if rule is None:
            return
        results = await self.results(call, experiment_id, rule.outcome)
        if results.experiment.promoted_variant is not None or not results.minimum_sample_reached:
            return
        for arm in results.arms:
            if not arm.holdout and arm.probability_best >= rule.min_probability_best:
                # Recorded unless a winner was meanwhile (by a publisher, or a concurrent ingestion): never twice.
                await self._store.promote(call.tenant, experiment_id, arm.arm, AUTO_PROMOTER)
                return

    async def list_experiments(
        self, call: CallContext, page_size: int, page_token: str
    ) -> tuple[list[ExperimentRow], str]:
        violations = Violations()
        violations.check(0 <= page_size <= self.limits.max_page_size, "page_size", f"1 to {self.limits.max_page_size}")
        after = _experiment_position(violations, page_tokens.decode(violations, page_token, EXPERIMENTS_LISTING))
        violations.raise_if_any("list request has invalid fields")
        size = page_size or self.limits.default_page_size
        rows = await self._store.list_page(call.tenant, size, after)
        page, more = rows[:size], len(rows) > size
        token = page_tokens.encode(EXPERIMENTS_LISTING, [page[-1].created_at.isoformat(), page[-1].id]) if more else ""
        return page, token

    async def results(
        self,
        call: CallContext,
        experiment_id: str,
        outcome: str,
        *,
        include_series: bool = False,
        bucket: timedelta | None = None,
        require_winner: bool = False,
    ) -> CampaignResults:
        chosen = outcome or DEFAULT_OUTCOME
        limits = self.limits
        width = bucket or limits.default_bucket
        violations = Violations()
        violations.check(chosen in OUTCOMES, "outcome", f"one of {', '.join(OUTCOMES)}")
        violations.check(
            limits.min_bucket <= width <= limits.max_bucket, "bucket", "1 minute to 366 days; one day when unset"
        )
        violations.raise_if_any("results request has invalid fields")
        experiment = await self._store.get(call.tenant, experiment_id)
        if require_winner and experiment.promoted_variant is None:
            raise FailedPrecondition(
                f"experiment {experiment_id!r} has no promoted variant yet",
                reason="NO_WINNER",
                metadata={"experiment_id": experiment_id},
            )
        counters = {(row.arm, row.outcome): row for row in await self._store.counters(call.tenant, experiment_id)}
        arms = [(variant.label, variant.publication_id) for variant in experiment.variants]
        if experiment.holdout_share > 0 or experiment.arms.get(HOLDOUT):
            arms.append((HOLDOUT, ""))

        def rate(arm: str, name: str) -> OutcomeRate:
            audience = experiment.arms.get(arm, 0)
            row = counters.get((arm, name))
            customers = row.customers if row else 0
            low, high = wilson_interval(customers, audience)
            return OutcomeRate(
                outcome=name,
                customers=customers,
                events=row.events if row else 0,
                rate=customers / audience if audience else 0.0,
                ci_low=low,
                ci_high=high,
                value_sum=row.value_sum if row else 0.0,
            )

        rates = {arm: [rate(arm, name) for name in OUTCOMES] for arm, _ in arms}
        chosen_index = OUTCOMES.index(chosen)
        counts = [(rates[arm][chosen_index].customers, experiment.arms.get(arm, 0)) for arm, _ in arms]
        best = probability_best(counts)
        holdout_audience = experiment.arms.get(HOLDOUT, 0)
        holdout_rate = rates[HOLDOUT][chosen_index].rate if HOLDOUT in rates else 0.0
        results = []
        for (arm, publication_id), probability in zip(arms, best, strict=True):
            own = rates[arm][chosen_index].rate
            compared = arm != HOLDOUT and holdout_audience > 0
            results.append(
                ArmResult(
                    arm=arm,
                    publication_id=publication_id,
                    audience=experiment.arms.get(arm, 0),
                    outcomes=rates[arm],
                    lift=(own - holdout_rate) / holdout_rate if compared and holdout_rate > 0 else None,
                    lift_absolute=own - holdout_rate if compared else None,
                    probability_best=probability,
                )
            )
        reached = all(result.audience >= experiment.min_sample_per_arm for result in results)
        series = (
            await self._series(call, experiment, chosen, [arm for arm, _ in arms], width) if include_series else None
        )
        return CampaignResults(
            experiment, chosen, results, reached, series, await self._winner_item_id(call, experiment)
        )

    async def _winner_item_id(self, call: CallContext, experiment: ExperimentRow) -> str:
        winner = next((row for row in experiment.variants if row.label == experiment.promoted_variant), None)
        if winner is None:
            return ""
        return winner.item_id or await self._store.item_of_publication(call.tenant, winner.publication_id)

    async def _series(
        self, call: CallContext, experiment: ExperimentRow, outcome: str, arms: list[str], width: timedelta
    ) -> dict[str, list[SeriesPoint]]:
        """Cumulative customers with the outcome per bucket from the experiment's creation up to now (or the latest
        outcome), over the arm's current audience, so the last point is the rate the results give."""
        start = experiment.created_at
        counts, latest = await self._store.first_outcomes_per_bucket(
            call.tenant, experiment.id, outcome, start, width.total_seconds()
        )
        until = max(datetime.now(UTC), latest or start)
        buckets = int((until - start) / width) + 1
        if buckets > self.limits.max_buckets:
            raise InvalidArgument(
                f"the series would have {buckets} buckets; at most {self.limits.max_buckets}: ask for a wider bucket",
                violations=[FieldViolation("bucket", f"at most {self.limits.max_buckets} buckets since creation")],
            )
        per_bucket = {arm: [0] * buckets for arm in arms}
        for arm, index, customers in counts:
            if arm in per_bucket and index < buckets:
                per_bucket[arm][index] += customers
        series: dict[str, list[SeriesPoint]] = {}
        for arm in arms:
            audience = experiment.arms.get(arm, 0)
            total = 0
            points = []
            for index, customers in enumerate(per_bucket[arm]):
                total += customers
                points.append(
                    SeriesPoint(
                        start=start + index * width,
                        end=start + (index + 1) * width,
                        customers=total,
                        rate=total / audience if audience else 0.0,
                    )
                )
            series[arm] = points
        return series

    async def promote(self, call: CallContext, experiment_id: str, variant: str) -> tuple[ExperimentRow, bool]:
        experiment = await self._store.get(call.tenant, experiment_id)
        labels = [row.label for row in experiment.variants]
        violations = Violations()
        violations.check(variant in labels, "variant", f"one of the experiment's variants: {', '.join(labels)}")
        violations.raise_if_any("promotion has invalid fields")
        if experiment.promoted_variant == variant:
            return experiment, True
        arms = [*labels, HOLDOUT] if experiment.holdout_share > 0 else labels
        for arm in arms:
            audience = experiment.arms.get(arm, 0)
            if audience < experiment.min_sample_per_arm:
                raise FailedPrecondition(
                    f"arm {arm!r} has {audience} customers; a variant is promoted once every arm has "
                    f"{experiment.min_sample_per_arm}",
                    reason="SAMPLE_TOO_SMALL",
                    metadata={
                        "arm": arm,
                        "audience": str(audience),
                        "min_sample_per_arm": str(experiment.min_sample_per_arm),
                    },
                )
        earlier = await self._store.promote(call.tenant, experiment_id, variant, call.principal.subject)
        if earlier is not None and earlier != variant:
            raise FailedPrecondition(
                f"variant {earlier!r} was already promoted",
                reason="ALREADY_PROMOTED",
                metadata={"promoted_variant": earlier},
            )
        return await self._store.get(call.tenant, experiment_id), earlier == variant

    def _check_customers(self, violations: Violations, customer_ids: list[str], *, required: bool) -> None:
        limits = self.limits
        low = 1 if required else 0
        if not violations.check(
            low <= len(customer_ids) <= limits.max_customers_per_call,
            "customer_ids",
            f"{low} to {limits.max_customers_per_call} customer ids per call",
        ):
            return
        for index, customer_id in enumerate(customer_ids):
            if not (0 < len(customer_id) <= limits.max_customer_id_chars and "\x00" not in customer_id):
                violations.add(f"customer_ids[{index}]", f"1 to {limits.max_customer_id_chars} characters, no NUL")
                if len(violations.items) >= MAX_LISTED_REFUSALS:
                    return
