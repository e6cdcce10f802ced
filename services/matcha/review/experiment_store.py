"""PostgreSQL storage of experiments: variants, the audience's recorded arms, outcome events and per-arm counters.

Every statement is scoped by tenant. Ingestion is one transaction: the events are checked against the audience,
stored with `ON CONFLICT DO NOTHING` on their id (deduplication), and the counters are updated from the rows
actually inserted, so the counters never count an event twice and are current when the call returns.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from matcha.review.audiences import ExperimentAudience, FrequencyCap, ResolvedAudience, audience_members
from matcha.runtime.database import Database
from matcha.runtime.errors import AlreadyExists, NotFound


@dataclass(frozen=True)
class VariantRow:
    label: str
    # Empty until a variant named by item is published to its arm.
    publication_id: str
    # An approved item delivered to its arm; empty for a variant named by publication.
    item_id: str = ""


@dataclass(frozen=True)
class AutoPromotionRule:
    """A variant is promoted once every arm has the minimum sample and its probability of being best on `outcome`
    is at least `min_probability_best`."""

    min_probability_best: float
    outcome: str


@dataclass(frozen=True)
class ExperimentRow:
    id: str
    name: str
    hash_key: bytes
    holdout_share: float
    min_sample_per_arm: int
    creator: str
    promoted_variant: str | None
    promoter: str | None
    promoted_at: datetime | None
    created_at: datetime
    variants: list[VariantRow]
    # Audience per arm.
    arms: dict[str, int]
    auto_promote: AutoPromotionRule | None = None

    @property
    def audience_size(self) -> int:
        return sum(self.arms.values())

    @property
    def delivered_per_arm(self) -> bool:
        """Variants named by item: each is published to its arm, and the audience was resolved at creation."""
        return any(variant.item_id for variant in self.variants)


@dataclass(frozen=True)
class NewExperiment:
    id: str
    name: str
    hash_key: bytes
    holdout_share: float
    min_sample_per_arm: int
    creator: str
    data_class: int
    purpose: str
    variants: list[VariantRow]
    channel: str = ""
    idempotency_key: str | None = None
    auto_promote: AutoPromotionRule | None = None


@dataclass(frozen=True)
class ItemState:
    """An item named as a variant, read under its row lock when the experiment is made."""

    id: str
    status: str
    channel: str
    purpose: str
    published: bool
    in_experiment: bool


@dataclass(frozen=True)
class CounterRow:
    arm: str
    outcome: str
    customers: int
    events: int
    value_sum: float


@dataclass(frozen=True)
class ResolvedEvent:
    """Where an event belongs, as the store knows it: None where the experiment or membership is unknown."""

    experiment_id: str | None
    # The experiment the named publication belongs to, and its variant label.
    publication_experiment_id: str | None
    publication_variant: str | None
    arm: str | None


@dataclass(frozen=True)
class OutcomeBatch:
    """Events of one call, column by column, resolved to their experiment and arm."""

    event_ids: list[str]
    experiment_ids: list[str]
    customer_ids: list[str]
    arms: list[str]
    outcomes: list[str]
    values: list[float]
    times: list[datetime]


def _experiment_row(row, variants: list[VariantRow], arms: dict[str, int]) -> ExperimentRow:
    return ExperimentRow(
        id=row["id"],
        name=row["name"],
        hash_key=row["hash_key"],
        holdout_share=row["holdout_share"],
        min_sample_per_arm=row["min_sample_per_arm"],
        creator=row["creator"],
        promoted_variant=row["promoted_variant"],
        promoter=row["promoter"],
        promoted_at=row["promoted_at"],
        created_at=row["created_at"],
        variants=variants,
        arms=arms,
        auto_promote=(
            None
            if row["auto_promote_probability"] is None
            else AutoPromotionRule(row["auto_promote_probability"], row["auto_promote_outcome"])
        ),
    )


_VARIANT_COLUMNS = "label, coalesce(publication_id, '') AS publication_id, coalesce(item_id, '') AS item_id"


def _variant(row) -> VariantRow:
    return VariantRow(row["label"], row["publication_id"], row["item_id"])


def _not_found(experiment_id: str) -> NotFound:
    return NotFound(
        f"experiment {experiment_id!r} not found",
        reason="EXPERIMENT_NOT_FOUND",
        metadata={"experiment_id": experiment_id},
    )


_INGEST = """
WITH new_events AS (
    INSERT INTO review_outcome_events (tenant, event_id, experiment_id, customer_id, arm, outcome, value, at)
    SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
                             $8::timestamptz[])
    ON CONFLICT (tenant, event_id) DO NOTHING
    RETURNING experiment_id, customer_id, arm, outcome, value, at
), firsts AS (
    INSERT INTO review_member_outcomes (tenant, experiment_id, customer_id, outcome, arm, first_at)
    SELECT $1, experiment_id, customer_id, outcome, min(arm), min(at) FROM new_events
    GROUP BY experiment_id, customer_id, outcome
    ORDER BY experiment_id, customer_id, outcome
    ON CONFLICT DO NOTHING
    RETURNING experiment_id, arm, outcome
), counted AS (
    INSERT INTO review_experiment_counters AS c (tenant, experiment_id, arm, outcome, customers, events, value_sum)
    SELECT $1, e.experiment_id, e.arm, e.outcome, coalesce(f.customers, 0), e.events, e.value_sum
    FROM (SELECT experiment_id, arm, outcome, count(*) AS events, sum(value) AS value_sum
          FROM new_events GROUP BY 1, 2, 3) AS e
    LEFT JOIN (SELECT experiment_id, arm, outcome, count(*) AS customers FROM firsts GROUP BY 1, 2, 3) AS f
        USING (experiment_id, arm, outcome)
    ORDER BY 2, 3, 4
    ON CONFLICT (tenant, experiment_id, arm, outcome) DO UPDATE SET
        customers = c.customers + excluded.customers,
        events = c.events + excluded.events,
        value_sum = c.value_sum + excluded.value_sum
    RETURNING experiment_id
)
SELECT (SELECT count(*) FROM new_events),
       ARRAY(SELECT DISTINCT x.id FROM counted
             JOIN review_experiments x ON x.tenant = $1 AND x.id = counted.experiment_id
             WHERE x.auto_promote_probability IS NOT NULL AND x.promoted_variant IS NULL ORDER BY x.id)
"""


class ExperimentStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._database.pool

    async def audience_members(self, tenant: str, publication_id: str) -> list[str] | None:
        """The members stored with a publication's audience; None when it has none."""
        async with self._pool.acquire() as connection:
            return await audience_members(connection, tenant, publication_id)

    async def publications_taken(self, tenant: str, publication_ids: list[str]) -> tuple[set[str], set[str]]:
        """Of these ids: those that are publications of the tenant, and those already in an experiment."""
        async with self._pool.acquire() as connection:
            known = await connection.fetch(
                """SELECT id::text FROM review_publications
                   WHERE tenant = $1 AND id::text = ANY($2::text[])""",
                tenant,
                publication_ids,
            )
            taken = await connection.fetch(
                "SELECT publication_id FROM review_experiment_variants WHERE tenant = $1 AND publication_id = ANY($2)",
                tenant,
                publication_ids,
            )
        return {row[0] for row in known}, {row[0] for row in taken}

    async def created_with_key(self, tenant: str, idempotency_key: str) -> str | None:
        """The experiment an earlier CreateExperiment with this idempotency key made."""
        return await self._pool.fetchval(
            "SELECT id FROM review_experiments WHERE tenant = $1 AND idempotency_key = $2", tenant, idempotency_key
        )

    async def create(
        self,
        tenant: str,
        experiment: NewExperiment,
        *,
        check_items: Callable[[list[ItemState]], None] | None = None,
        fill: Callable[[asyncpg.Connection | PoolConnectionProxy], Awaitable[ResolvedAudience]] | None = None,
    ) -> ResolvedAudience | None:
        """Creates the experiment and its variants in one transaction. Variants named by item: the items are locked
        and handed to `check_items` (which refuses by raising), and `fill` stores the audience in the same
        transaction, so a refusal anywhere writes nothing."""
        async with self._pool.acquire() as connection, connection.transaction():
            inserted = await connection.fetchval(
                """INSERT INTO review_experiments (tenant, id, name, hash_key, holdout_share, min_sample_per_arm,
                       creator, data_class, purpose, channel, idempotency_key, auto_promote_probability,
                   auto_promote_outcome)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                   ON CONFLICT DO NOTHING RETURNING 1""",
                tenant,
                experiment.id,
                experiment.name,
                experiment.hash_key,
                experiment.holdout_share,
                experiment.min_sample_per_arm,
                experiment.creator,
                experiment.data_class,
                experiment.purpose,
                experiment.channel,
                experiment.idempotency_key,
                experiment.auto_promote.min_probability_best if experiment.auto_promote else None,
                experiment.auto_promote.outcome if experiment.auto_promote else "",
            )
            if inserted is None:
                raise AlreadyExists(
                    f"experiment {experiment.id!r} already exists",
                    reason="EXPERIMENT_EXISTS",
                    metadata={"experiment_id": experiment.id},
                )
            item_ids = [variant.item_id for variant in experiment.variants if variant.item_id]
            if item_ids and check_items is not None:
                rows = await connection.fetch(
                    """SELECT i.id::text AS id, i.status, i.channel, i.purpose,
                              EXISTS (SELECT 1 FROM review_publications p WHERE p.item_id = i.id) AS published,
                              EXISTS (SELECT 1 FROM review_experiment_variants v
                                      WHERE v.tenant = i.tenant AND v.item_id = i.id::text) AS in_experiment
                       FROM review_items i WHERE i.tenant = $1 AND i.id = ANY($2::uuid[])
                       ORDER BY i.id FOR UPDATE OF i""",
                    tenant,
                    [uuid.UUID(item_id) for item_id in item_ids],
                )
                check_items([ItemState(**dict(row)) for row in rows])
            try:
                await connection.executemany(
                    """INSERT INTO review_experiment_variants (tenant, experiment_id, label, position, publication_id,
                           item_id)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    [
                        (
                            tenant,
                            experiment.id,
                            variant.label,
                            position,
                            variant.publication_id or None,
                            variant.item_id or None,
                        )
                        for position, variant in enumerate(experiment.variants)
                    ],
                )
            except asyncpg.UniqueViolationError:
                # Another experiment took one of the items or publications meanwhile.
                raise AlreadyExists(
                    "a variant's item or publication was taken by another experiment meanwhile; nothing was created",
                    reason="VARIANT_TAKEN",
                ) from None
            resolved = None
            if fill is not None:
                resolved = await fill(connection)
                await connection.execute(
                    """UPDATE review_experiments SET segmentation = $3, segmentation_version = $4, segment_id = $5,
                           audience_size = $6, members_sha256 = $7, excluded_without_consent = $8,
                           excluded_opted_out = $9
                       WHERE tenant = $1 AND id = $2""",
                    tenant,
                    experiment.id,
                    resolved.segmentation,
                    resolved.segmentation_version,
                    resolved.segment_id,
                    resolved.size,
                    resolved.members_sha256,
                    resolved.excluded_without_consent,
                    resolved.excluded_opted_out,
                )
        return resolved

    async def resolved_audience(self, tenant: str, experiment_id: str) -> ResolvedAudience | None:
        """The audience an experiment resolved at creation (None for one without)."""
        row = await self._pool.fetchrow(
            """SELECT segmentation, segmentation_version, segment_id, audience_size, members_sha256,
                      excluded_without_consent, excluded_opted_out
               FROM review_experiments WHERE tenant = $1 AND id = $2 AND members_sha256 <> ''""",
            tenant,
            experiment_id,
        )
        if row is None:
            return None
        return ResolvedAudience(
            segmentation=row["segmentation"],
            segmentation_version=row["segmentation_version"],
            segment_id=row["segment_id"],
            size=row["audience_size"],
            members_sha256=row["members_sha256"],
            excluded_without_consent=row["excluded_without_consent"],
            excluded_opted_out=row["excluded_opted_out"],
            excluded_frequency_capped=0,
            cap=FrequencyCap(0, timedelta(0)),
        )

    async def recorded_arms(self, tenant: str, experiment_id: str, customer_ids: list[str]) -> dict[str, str]:
        """The arms of those of the customers already in the audience."""
        rows = await self._pool.fetch(
            """SELECT customer_id, arm FROM review_experiment_members
               WHERE tenant = $1 AND experiment_id = $2 AND customer_id = ANY($3::text[])""",
            tenant,
            experiment_id,
            customer_ids,
        )
        return {row["customer_id"]: row["arm"] for row in rows}

    async def get(self, tenant: str, experiment_id: str) -> ExperimentRow:
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM review_experiments WHERE tenant = $1 AND id = $2", tenant, experiment_id
            )
            if row is None:
                raise _not_found(experiment_id)
            variants = await connection.fetch(
                f"""SELECT {_VARIANT_COLUMNS} FROM review_experiment_variants
                   WHERE tenant = $1 AND experiment_id = $2 ORDER BY position""",
                tenant,
                experiment_id,
            )
            arms = await connection.fetch(
                """SELECT arm, count(*) AS customers FROM review_experiment_members
                   WHERE tenant = $1 AND experiment_id = $2 GROUP BY arm""",
                tenant,
                experiment_id,
            )
        return _experiment_row(
            row,
            [_variant(variant) for variant in variants],
            {arm["arm"]: arm["customers"] for arm in arms},
        )

    async def list_page(self, tenant: str, page_size: int, after: tuple[datetime, str] | None) -> list[ExperimentRow]:
        """One page, newest first (then by id), plus one row to tell whether another page follows."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                """SELECT * FROM review_experiments
                   WHERE tenant = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                   ORDER BY created_at DESC, id DESC LIMIT $4""",
                tenant,
                after[0] if after else None,
                after[1] if after else "",
                page_size + 1,
            )
            ids = [row["id"] for row in rows]
            variants = await connection.fetch(
                f"""SELECT experiment_id, {_VARIANT_COLUMNS} FROM review_experiment_variants
                   WHERE tenant = $1 AND experiment_id = ANY($2::text[]) ORDER BY experiment_id, position""",
                tenant,
                ids,
            )
            arms = await connection.fetch(
                """SELECT experiment_id, arm, count(*) AS customers FROM review_experiment_members
                   WHERE tenant = $1 AND experiment_id = ANY($2::text[]) GROUP BY experiment_id, arm""",
                tenant,
                ids,
            )
        variants_of: dict[str, list[VariantRow]] = {}
        for variant in variants:
            variants_of.setdefault(variant["experiment_id"], []).append(_variant(variant))
        arms_of: dict[str, dict[str, int]] = {}
        for arm in arms:
            arms_of.setdefault(arm["experiment_id"], {})[arm["arm"]] = arm["customers"]
        return [_experiment_row(row, variants_of.get(row["id"], []), arms_of.get(row["id"], {})) for row in rows]

    async def first_outcomes_per_bucket(
        self, tenant: str, experiment_id: str, outcome: str, start: datetime, bucket_seconds: float
    ) -> tuple[list[tuple[str, int, int]], datetime | None]:
        """Customers whose first `outcome` falls in each bucket from `start` (earlier ones in bucket 0), as (arm,
        bucket index, customers), and the latest first-outcome time."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                """SELECT arm, greatest(0, floor(extract(epoch FROM first_at - $4) / $5))::bigint AS bucket,
                          count(*) AS customers
                   FROM review_member_outcomes
                   WHERE tenant = $1 AND experiment_id = $2 AND outcome = $3
                   GROUP BY 1, 2""",
                tenant,
                experiment_id,
                outcome,
                start,
                bucket_seconds,
            )
            latest = await connection.fetchval(
                """SELECT max(first_at) FROM review_member_outcomes
                   WHERE tenant = $1 AND experiment_id = $2 AND outcome = $3""",
                tenant,
                experiment_id,
                outcome,
            )
        return [(row["arm"], row["bucket"], row["customers"]) for row in rows], latest

    async def add_members(
        self, tenant: str, experiment_id: str, customer_ids: list[str], arms: list[str]
    ) -> tuple[dict[str, str], int]:
        """Records the arms of customers not yet in the audience; returns every given customer's recorded arm."""
        async with self._pool.acquire() as connection, connection.transaction():
            added = await connection.execute(
                """INSERT INTO review_experiment_members (tenant, experiment_id, customer_id, arm)
                   SELECT $1, $2, * FROM unnest($3::text[], $4::text[])
                   ON CONFLICT DO NOTHING""",
                tenant,
                experiment_id,
                customer_ids,
                arms,
            )
            rows = await connection.fetch(
                """SELECT customer_id, arm FROM review_experiment_members
                   WHERE tenant = $1 AND experiment_id = $2 AND customer_id = ANY($3::text[])""",
                tenant,
                experiment_id,
                customer_ids,
            )
        return {row["customer_id"]: row["arm"] for row in rows}, int(added.split()[-1])

    async def ingest(
        self,
        tenant: str,
        experiment_ids: list[str],
        publication_ids: list[str],
        customer_ids: list[str],
        accept,
    ) -> tuple[int, list[str]]:
        """Resolves each event (experiment, publication, membership), lets `accept` refuse the call or build the
        rows to store from that, and stores them with the counters, all in one transaction; returns the events
        inserted (the others were duplicates) and the experiments whose counters changed that have a rule of
        automatic promotion and no winner yet."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """SELECT x.id AS experiment_id, v.experiment_id AS publication_experiment_id,
                          v.label AS publication_variant, m.arm
                   FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY
                        AS t(experiment_id, publication_id, customer_id, position)
                   LEFT JOIN review_experiment_variants v
                       ON t.publication_id <> '' AND v.tenant = $1 AND v.publication_id = t.publication_id
                   LEFT JOIN review_experiments x
                       ON x.tenant = $1 AND x.id = coalesce(nullif(t.experiment_id, ''), v.experiment_id)
                   LEFT JOIN review_experiment_members m
                       ON m.tenant = $1 AND m.experiment_id = x.id AND m.customer_id = t.customer_id
                   ORDER BY t.position""",
                tenant,
                experiment_ids,
                publication_ids,
                customer_ids,
            )
            batch: OutcomeBatch = accept([ResolvedEvent(*row) for row in rows])
            counts = await connection.fetchrow(
                _INGEST,
                tenant,
                batch.event_ids,
                batch.experiment_ids,
                batch.customer_ids,
                batch.arms,
                batch.outcomes,
                batch.values,
                batch.times,
            )
            assert counts is not None  # its final SELECT has no FROM: always one row
            inserted, to_judge = counts
        return inserted, list(to_judge)

    async def item_of_publication(self, tenant: str, publication_id: str) -> str:
        """The item a publication published (empty for an unknown one)."""
        item_id = await self._pool.fetchval(
            "SELECT item_id::text FROM review_publications WHERE tenant = $1 AND id = $2::uuid", tenant, publication_id
        )
        return item_id or ""

    async def counters(self, tenant: str, experiment_id: str) -> list[CounterRow]:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                """SELECT arm, outcome, customers, events, value_sum FROM review_experiment_counters
                   WHERE tenant = $1 AND experiment_id = $2""",
                tenant,
                experiment_id,
            )
        return [CounterRow(**row) for row in rows]

    async def promote(self, tenant: str, experiment_id: str, variant: str, promoter: str) -> str | None:
        """Records the winner unless one is recorded; returns the variant promoted before this call, if any."""
        async with self._pool.acquire() as connection, connection.transaction():
            earlier = await connection.fetchrow(
                "SELECT promoted_variant FROM review_experiments WHERE tenant = $1 AND id = $2 FOR UPDATE",
                tenant,
                experiment_id,
            )
            if earlier is None:
                raise _not_found(experiment_id)
            if earlier["promoted_variant"] is not None:
                return earlier["promoted_variant"]
            await connection.execute(
                """UPDATE review_experiments SET promoted_variant = $3, promoter = $4, promoted_at = now()
                   WHERE tenant = $1 AND id = $2""",
                tenant,
                experiment_id,
                variant,
                promoter,
            )
        return None


# Per kind of record about a subject (a customer of an experiment), the rows `describe_kind` reads.
EXPERIMENT_SUBJECT_RECORDS = (
    (
        "experiment-arms",
        """SELECT m.experiment_id AS scope, x.data_class, ARRAY[x.purpose] AS purposes,
                  (m.assigned_at, m.experiment_id) AS ordering,
                  jsonb_build_object('experiment_id', m.experiment_id, 'arm', m.arm,
                      'assign_time', m.assigned_at) AS record
            FROM review_experiment_members m
            JOIN review_experiments x ON x.tenant = m.tenant AND x.id = m.experiment_id
            WHERE m.tenant = $1 AND m.customer_id = $2""",
    ),
    (
        "outcome-events",
        """SELECT o.experiment_id AS scope, x.data_class, ARRAY[x.purpose] AS purposes, (o.at, o.event_id) AS ordering,
                  jsonb_build_object('event_id', o.event_id, 'experiment_id', o.experiment_id, 'arm', o.arm,
                      'outcome', o.outcome, 'value', o.value, 'time', o.at) AS record
            FROM review_outcome_events o
            JOIN review_experiments x ON x.tenant = o.tenant AND x.id = o.experiment_id
            WHERE o.tenant = $1 AND o.customer_id = $2""",
    ),
)


async def erase_experiment_customer(connection, tenant: str, customer_id: str) -> tuple[int, int]:
    """Forgets a customer's arms and outcome events (experiments name customers by the id erasure is given), and
    takes them out of the per-arm counters, so results stay the sums of what is kept."""
    events = await connection.fetch(
        """DELETE FROM review_outcome_events WHERE tenant = $1 AND customer_id = $2
           RETURNING experiment_id, arm, outcome, value""",
        tenant,
        customer_id,
    )
    firsts = await connection.fetch(
        """DELETE FROM review_member_outcomes WHERE tenant = $1 AND customer_id = $2
           RETURNING experiment_id, arm, outcome""",
        tenant,
        customer_id,
    )
    taken: dict[tuple[str, str, str], list[float]] = {}  # events, value, customers
    for row in events:
        counts = taken.setdefault((row["experiment_id"], row["arm"], row["outcome"]), [0, 0.0, 0])
        counts[0] += 1
        counts[1] += row["value"]
    for row in firsts:
        taken.setdefault((row["experiment_id"], row["arm"], row["outcome"]), [0, 0.0, 0])[2] += 1
    for (experiment_id, arm, outcome), (event_count, value, customers) in sorted(taken.items()):
        await connection.execute(
            """UPDATE review_experiment_counters
               SET events = events - $5, value_sum = value_sum - $6, customers = customers - $7
               WHERE tenant = $1 AND experiment_id = $2 AND arm = $3 AND outcome = $4""",
            tenant,
            experiment_id,
            arm,
            outcome,
            event_count,
            value,
            customers,
        )
    arms = await connection.execute(
        "DELETE FROM review_experiment_members WHERE tenant = $1 AND customer_id = $2", tenant, customer_id
    )
    return int(arms.split()[-1]), len(events)


@dataclass(frozen=True)
class ItemVariant:
    """The experiment an item is a variant of (named by item), read in the item's publication transaction."""

    experiment_id: str
    label: str
    publication_id: str
    audience: ExperimentAudience


async def variant_of_item(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, item_id: str
) -> ItemVariant | None:
    row = await connection.fetchrow(
        """SELECT v.experiment_id, v.label, coalesce(v.publication_id, '') AS publication_id, x.segmentation,
                  x.segmentation_version, x.segment_id
           FROM review_experiment_variants v JOIN review_experiments x ON x.tenant = v.tenant AND x.id = v.experiment_id
           WHERE v.tenant = $1 AND v.item_id = $2""",
        tenant,
        item_id,
    )
    if row is None:
        return None
    return ItemVariant(
        row["experiment_id"],
        row["label"],
        row["publication_id"],
        ExperimentAudience(row["experiment_id"], row["segmentation"], row["segmentation_version"], row["segment_id"]),
    )


async def experiment_exists(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, experiment_id: str
) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM review_experiments WHERE tenant = $1 AND id = $2)", tenant, experiment_id
        )
    )


async def record_variant_publication(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, variant: ItemVariant, publication_id: str
) -> None:
    await connection.execute(
        """UPDATE review_experiment_variants SET publication_id = $4
           WHERE tenant = $1 AND experiment_id = $2 AND label = $3""",
        tenant,
        variant.experiment_id,
        variant.label,
        publication_id,
    )


def experiment_not_found(experiment_id: str) -> NotFound:
    return _not_found(experiment_id)
