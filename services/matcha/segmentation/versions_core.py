"""Versions and assignment: builds (BuildSegmentation), reading versions and their members, scoring (Assign),
live re-assignment of changed customers with its change feed (WatchSegmentChanges), and drift between versions
(CompareSegmentations).

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
"""

import asyncio
import logging
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from matcha.runtime import page_tokens
from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, MatchaError, NotFound, Violations
from matcha.runtime.governance import CallContext, require_consent
from matcha.segmentation import audience, drift
from matcha.segmentation.builder import BuildResult, BuildSpec, FittedBuild, PreviousVersion, finish_build, fit_build
from matcha.segmentation.checks import CHANNEL_NAME, Limits, check_name, finite, is_stored_text
from matcha.segmentation.customer_store import CustomerStore
from matcha.segmentation.features import (
    BUILT_IN_FEATURES,
    DEFAULT_FEATURES,
    FeatureTable,
    is_known_name,
    quintile_edges,
    with_scores,
)
from matcha.segmentation.feed import ChangeFeed
from matcha.segmentation.k_choice import SILHOUETTE, STABILITY
from matcha.segmentation.methods import (
    CLASSIC_RFM_RULES,
    HDBSCAN_METHOD,
    KMEANS,
    RULES,
    TRANSFORMS,
    FrozenModel,
    KMeansParameters,
    Rule,
    RuleError,
    assign,
    check_rules_evaluate,
    compile_rules,
)
from matcha.segmentation.records import (
    BUILDING,
    METHOD_NUMBERS,
    READY,
    AssignOutcome,
    BuildInput,
    ChangeRecord,
    Comparison,
    MemberPage,
    MembershipsToStore,
    Move,
    SegmentationView,
    SegmentRecord,
    SegmentsToStore,
    VersionRecord,
)
from matcha.segmentation.versions_store import VersionsStore, segmentation_not_found

logger = logging.getLogger(__name__)

SEGMENT_ID = re.compile(r"^[a-z0-9_]{1,63}$")


class VersionsCore:
    def __init__(self, store: VersionsStore, customers: CustomerStore, feed: ChangeFeed, limits: Limits) -> None:
        self._store = store
        self._customers = customers
        self._feed = feed
        self.limits = limits
        self._models: OrderedDict[int, FrozenModel] = OrderedDict()
        self._builds: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Lets running builds finish: a caller whose deadline passed still gets its version."""
        if self._builds:
            await asyncio.gather(*self._builds, return_exceptions=True)

    # --- live re-assignment -------------------------------------------------------------------

    async def reassign(
        self, connection, tenant: str, keys: list[int], causes: dict[str, str], ids: dict[int, str] | None = None
    ) -> int:
        """Scores changed customers against the latest READY version of every segmentation; records moves.
        `ids` are the customers' ids by key when the caller has them."""
        if not keys:
            return 0
        versions = await self._store.latest_ready_versions(connection, tenant)
        if not versions:
            return 0
        if ids is None:
            ids = await self._customers.customer_ids(connection, keys) if causes else {}
        moved = 0
        for version in versions:
            model = self.model(version)
            custom = [name for name in model.input_features if name not in BUILT_IN_FEATURES]
            table, _ = await self._customers.load_features(connection, tenant, version.purpose, custom, keys)
            table = _complete_rows(table, custom)
            if not len(table):
                continue
            assignment = assign(model, with_scores(table.columns, model.rfm_edges))
            current = await self._store.current_positions(connection, version.id, table.keys)
            moves = [
                Move(
                    customer_key=int(key),
                    from_segment=model.segment_ids[current[key]] if key in current else "",
                    to_position=int(position),
                    distance=float(distance),
                    confidence=float(confidence),
                    cause_id=causes.get(ids.get(int(key), ""), ""),
                )
                for key, position, distance, confidence in zip(
                    table.keys.tolist(),
                    assignment.positions.tolist(),
                    assignment.distances.tolist(),
                    assignment.confidences.tolist(),
                    strict=True,
                )
                if current.get(key) != position
            ]
            names = list(zip(model.segment_ids, model.segment_names, strict=True))
            await self._store.apply_moves(connection, tenant, version, moves, names)
            moved += len(moves)
        return moved

    # --- builds -------------------------------------------------------------------------------

    async def build_segmentation(self, call: CallContext, request: BuildInput) -> SegmentationView:
        if call.idempotency_key:
            existing = await self._store.version_by_idempotency_key(call.tenant, call.idempotency_key)
            if existing is not None:
                return await self._view(existing)
        features, spec_without_data, violations = self._validate_build(request)
        rule_features = _rule_features(spec_without_data.rules)
        needed = [*features, *sorted(rule_features - set(features))]
        # Invalid names are already reported by the validation; the database is not asked about them.
        custom = [name for name in needed if name not in BUILT_IN_FEATURES and is_known_name(name)]
        table, _ = await self._customers.load_features(
            self._customers.pool,
            call.tenant,
            call.purpose,
            custom,
            built_in=any(name in BUILT_IN_FEATURES for name in needed),
        )
        if len(table):
            # A caller feature no eligible customer has is unknown.
            unknown = {name for name in custom if np.isnan(table.columns[name]).all()}
            for index, name in enumerate(features):
                if name in unknown:
                    violations.add(f"features[{index}]", f"unknown feature {name!r}")
            for index, rule in enumerate(spec_without_data.rules):
                for name in sorted(_variables(rule) & unknown):
                    violations.add(f"rules.rules[{index}].condition", f"unknown feature {name!r}")
        violations.raise_if_any()
        table = _complete_rows(table, custom)
        if len(table) < 2:
            raise FailedPrecondition(
                f"{len(table)} eligible customer(s) for purpose {call.purpose!r}; a segmentation needs 2 or more",
                reason="POPULATION_TOO_SMALL",
                metadata={"population": str(len(table)), "purpose": call.purpose},
            )
        violations = Violations()
        kmeans = spec_without_data.kmeans
        # Set for k-means builds only.
        if kmeans is not None and kmeans.k:
            violations.check(kmeans.k <= len(table), "kmeans.k", f"larger than the population ({len(table)})")
        edges = quintile_edges(table.columns)
        columns = with_scores(table.columns, edges)
        table = FeatureTable(table.keys, columns)
        if spec_without_data.method == RULES:
            try:
                check_rules_evaluate(list(spec_without_data.rules), {n: float(v[0]) for n, v in columns.items()})
            except RuleError as error:
                violations.add(f"rules.rules[{error.index}].condition", str(error))
        violations.raise_if_any()
        version = await self._store.start_version(
            call.tenant,
            request.name,
            description=request.description,
            method=METHOD_NUMBERS[spec_without_data.method],
            features=features,
            seed=request.seed,
            purpose=call.purpose,
            subject=call.principal.subject,
            idempotency_key=call.idempotency_key,
        )
        task = asyncio.create_task(self._build(version, table, edges, spec_without_data))
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)
        # The build carries on if the caller goes away; its outcome is in the stored version.
        await asyncio.shield(task)
        return await self._view(await self._store.get_version(call.tenant, request.name, version.version))

    def _validate_build(self, request: BuildInput) -> tuple[list[str], BuildSpec, Violations]:
        """Checks what needs no data; the violations are raised once the data has been checked too."""
        violations = Violations()
        check_name(violations, "name", request.name)
        violations.check(len(request.description) <= 1000, "description", "at most 1000 characters")
        features = list(request.features) or list(DEFAULT_FEATURES)
        violations.check(len(features) <= self.limits.max_features, "features", "at most 64 features")
        for index, name in enumerate(features):
            if not is_known_name(name):
                violations.add(f"features[{index}]", f"unknown feature {name!r}")
            elif features.index(name) != index:
                violations.add(f"features[{index}]", f"duplicates features[{features.index(name)}]")
        method = request.method or KMEANS
        kmeans = request.kmeans
        if method == KMEANS:
            k_min = kmeans.k_min or 2
            k_max = kmeans.k_max or 12
            sample = kmeans.sample_size or 3_000
            if kmeans.k:
                violations.check(2 <= kmeans.k <= 100, "kmeans.k", "between 2 and 100, or 0 to choose")
            violations.check(k_min >= 2, "kmeans.k_min", "2 or more")
            violations.check(k_max <= 50, "kmeans.k_max", "at most 50")
            violations.check(k_min <= k_max, "kmeans.k_max", "at least k_min")
            violations.check(1_000 <= sample <= 100_000, "kmeans.silhouette_sample_size", "between 1,000 and 100,000")
            violations.check(kmeans.criterion in (SILHOUETTE, STABILITY), "kmeans.criterion", "silhouette or stability")
            violations.check(0 <= kmeans.min_share <= 0.5, "kmeans.min_share", "between 0 and 0.5")
            preferred = kmeans.preferred if kmeans.preferred and any(kmeans.preferred) else None
            if preferred is not None:
                low, high = preferred
                violations.check(k_min <= low <= k_max, "kmeans.preferred_k_min", "within k_min..k_max")
                violations.check(low <= high <= k_max, "kmeans.preferred_k_max", "within preferred_k_min..k_max")
            kmeans = KMeansParameters(kmeans.k, k_min, k_max, sample, kmeans.criterion, kmeans.min_share, preferred)
        min_cluster_size = request.min_cluster_size or 50
        min_samples = request.min_samples or min_cluster_size
        if method == HDBSCAN_METHOD:
            violations.check(min_cluster_size >= 2, "hdbscan.min_cluster_size", "2 or more")
            violations.check(min_samples >= 1, "hdbscan.min_samples", "1 or more")
        rules = list(request.rules) or [Rule(*rule) for rule in CLASSIC_RFM_RULES]
        if method == RULES:
            self._check_rules(violations, rules)
        for name, transform_name in request.transforms.items():
            if name not in features:
                violations.add(f"transforms[{name}]", "not among the segmentation's features")
            elif transform_name not in TRANSFORMS:
                violations.add(f"transforms[{name}]", "unknown transform")
        exemplars = 5 if request.exemplar_count is None else request.exemplar_count
        violations.check(0 <= exemplars <= 50, "exemplar_count", "between 0 and 50")
        return (
            features,
            BuildSpec(
                method=method,
                features=features,
                transforms=dict(request.transforms),
                seed=request.seed,
                exemplar_count=exemplars,
                kmeans=kmeans if method == KMEANS else None,
                min_cluster_size=min_cluster_size,
                min_samples=min_samples,
                rules=tuple(rules) if method == RULES else (),
                silhouette_sample_size=kmeans.sample_size if method == KMEANS else 3_000,
            ),
            violations,
        )

    def _check_rules(self, violations: Violations, rules: list[Rule]) -> None:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            path = f"rules.rules[{index}]"
            if not SEGMENT_ID.match(rule.id) or rule.id == "other":
                violations.add(f"{path}.id", "lowercase letters, digits and '_' (1 to 63), not 'other'")
            elif rule.id in seen:
                violations.add(f"{path}.id", "duplicates an earlier rule id")
            seen.add(rule.id)
            try:
                (program,) = compile_rules([rule])
            except RuleError as error:
                violations.add(f"{path}.condition", str(error))
                continue
            for name in program.variables():
                if not is_known_name(name):
                    violations.add(f"{path}.condition", f"unknown feature {name!r}")

    async def _build(self, version: VersionRecord, table: FeatureTable, edges, spec: BuildSpec) -> None:
        progress = {"stage": "transforming", "completed": 0, "total": 0}

        def report(stage: str, completed: int, total: int) -> None:
            # Called from the worker thread; the ticker below publishes it.
            progress.update(stage=stage, completed=completed, total=total)

        ticker = asyncio.create_task(self._publish_progress(version.id, progress))

        async def finish(fitted: FittedBuild) -> SegmentsToStore:
            result: BuildResult = await asyncio.to_thread(finish_build, table, spec, fitted, report)
            ticker.cancel()
            await self._store.set_progress(version.id, {"stage": "storing", "completed": 0, "total": 1})
            return _segments_to_store(table, result)

        try:
            previous = await self._previous(version)
            fitted: FittedBuild = await asyncio.to_thread(fit_build, table, edges, spec, previous, report)
            assignment = fitted.assignment
            memberships = MembershipsToStore(
                table.keys, assignment.positions, assignment.distances, assignment.confidences
            )
            # Memberships are written while the segments are profiled.
            await self._store.complete_version(version.id, memberships, finish(fitted))
        except Exception as error:
            logger.exception("segmentation build failed", extra={"version_id": version.id})
            message = error.message if isinstance(error, MatchaError) else "the build failed; see the service log"
            await self._store.fail_version(version.id, {"code": 13, "message": message})
        finally:
            ticker.cancel()

    async def _publish_progress(self, version_id: int, progress: dict) -> None:
        published: dict = {}
        while True:
            if progress != published:
                published = dict(progress)
                await self._store.set_progress(version_id, published)
            await asyncio.sleep(self.limits.progress_interval_seconds)

    async def _previous(self, version: VersionRecord) -> PreviousVersion | None:
        if version.version == 1:
            return None
        try:
            previous = await self._store.get_version(version.tenant, version.name, 0, ready=True)
        except MatchaError:
            return None
        model = self.model(previous)
        keys, positions, _ = await self._store.memberships(previous.id)
        segment_ids = [model.segment_ids[position] for position in positions.tolist()]
        return PreviousVersion(keys, segment_ids, model.next_segment_number)

    # --- reading segmentations ----------------------------------------------------------------

    async def get_segmentation(self, call: CallContext, name: str, version: int) -> SegmentationView:
        self._require_name(name)
        return await self._view(await self._store.get_version(call.tenant, name, version))

    async def list_segmentations(
        self, call: CallContext, name: str, page_size: int, page_token: str
    ) -> tuple[list[SegmentationView], str]:
        violations = Violations()
        if name:
            check_name(violations, "name", name)
        page_size = page_size or 50
        violations.check(1 <= page_size <= 200, "page_size", "between 1 and 200")
        listing = page_tokens.listing_key("segmentations", name)
        offset = page_tokens.decode(violations, page_token, listing)
        if offset is not None and not (isinstance(offset, int) and offset >= 0):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        offset = offset or 0
        versions = await self._store.list_versions(call.tenant, name, page_size + 1, offset)
        views = [await self._view(version, with_details=False) for version in versions[:page_size]]
        return views, page_tokens.encode(listing, offset + page_size) if len(versions) > page_size else ""

    async def list_members(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        segment_id: str,
        page_size: int,
        page_token: str,
    ) -> MemberPage:
        violations = Violations()
        check_name(violations, "name", name)
        violations.check(bool(segment_id), "segment_id", "must not be empty")
        page_size = page_size or 100
        violations.check(1 <= page_size <= 1000, "page_size", "between 1 and 1000")
        listing = page_tokens.listing_key("segment members", name, version_number, segment_id)
        after = page_tokens.decode(violations, page_token, listing)
        well_formed = isinstance(after, list) and len(after) == 2 and isinstance(after[1], int)
        if after is not None and not (well_formed and isinstance(after[0], int | float)):
            violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        cursor = (float(after[0]), int(after[1])) if after else None
        version = await self.ready(call, name, version_number)
        position = self._position(self.model(version), name, segment_id)
        rows, total = await self._store.members(version.id, position, page_size + 1, cursor)
        last = rows[page_size - 1] if len(rows) > page_size else None
        return MemberPage(
            [(customer_id, distance, since) for customer_id, distance, since, _ in rows[:page_size]],
            page_tokens.encode(listing, [last[1], last[3]]) if last else "",
            total,
        )

    async def reachable_members(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        segment_id: str,
        customer_ids: list[str],
        channel: str,
    ) -> tuple[int, audience.ReachableMembers]:
        """(version read, 0 for a list; the members the call's purpose may reach on `channel`)."""
        violations = Violations()
        listed = bool(customer_ids)
        violations.check(
            listed != bool(name or segment_id), "segment_id", "a segment (name and segment_id) or customer_ids"
        )
        if not listed:
            check_name(violations, "name", name)
            violations.check(bool(segment_id), "segment_id", "must not be empty")
        limit = self.limits.max_audience_customers
        violations.check(len(customer_ids) <= limit, "customer_ids", f"at most {limit:,} customer ids")
        for index, customer_id in enumerate(customer_ids[:limit]):
            if not 0 < len(customer_id) <= self.limits.max_id_chars:
                violations.add(f"customer_ids[{index}]", f"1 to {self.limits.max_id_chars} characters")
        violations.check(
            not channel or bool(CHANNEL_NAME.match(channel)), "channel", "lowercase letters, digits and '_', 1 to 32"
        )
        violations.raise_if_any()
        if listed:
            members = await audience.listed_customers(
                self._store.pool, call.tenant, customer_ids, call.purpose, channel
            )
            return 0, members
        version = await self.ready(call, name, version_number)
        position = self._position(self.model(version), name, segment_id)
        members = await audience.segment_members(self._store.pool, version.id, position, call.purpose, channel)
        return version.version, members

    async def attach_persona(
        self, call: CallContext, name: str, version_number: int, segment_id: str, persona: dict[str, Any]
    ) -> SegmentRecord:
        violations = Violations()
        check_name(violations, "name", name)
        summary = persona.get("summary", "")
        violations.check(bool(summary.strip()), "persona.summary", "must not be empty")
        violations.check(len(summary) <= self.limits.max_persona_chars, "persona.summary", "at most 8,000 characters")
        violations.check(
            len(persona.get("title", "")) <= self.limits.max_title_chars, "persona.title", "at most 200 characters"
        )
        violations.raise_if_any()
        version = await self.ready(call, name, version_number)
        self._position(self.model(version), name, segment_id)
        stamped = persona | {"author_subject": call.principal.subject, "update_time": datetime.now(UTC).isoformat()}
        await self._store.attach_persona(version.id, segment_id, stamped)
        segments = await self._store.segments(version.id)
        return next(segment for segment in segments if segment.id == segment_id)

    # --- scoring ------------------------------------------------------------------------------

    async def assign(
        self,
        call: CallContext,
        name: str,
        version_number: int,
        customer_id: str | None,
        values: dict[str, float] | None,
    ) -> AssignOutcome:
        violations = Violations()
        check_name(violations, "name", name)
        violations.check(customer_id is not None or values is not None, "customer", "give customer_id or features")
        if customer_id is not None:
            violations.check(bool(customer_id), "customer_id", "must not be empty")
        violations.raise_if_any()
        version = await self.ready(call, name, version_number)
        model = self.model(version)
        if customer_id is not None:
            stored = await self._customers.customer(self._customers.pool, call.tenant, customer_id)
            require_consent(stored.row.policy.data_class, stored.row.policy.consented_purposes, call.purpose)
            custom = [n for n in model.input_features if n not in BUILT_IN_FEATURES]
            table, _ = await self._customers.load_features(
                self._customers.pool, call.tenant, call.purpose, custom, [stored.key]
            )
            missing = [n for n in custom if math.isnan(table.columns[n][0])]
            if missing:
                raise FailedPrecondition(
                    f"customer {customer_id!r} lacks feature(s) {', '.join(missing)}",
                    reason="FEATURE_MISSING",
                    metadata={"customer_id": customer_id, "features": ",".join(missing)},
                )
            columns = with_scores(table.columns, model.rfm_edges)
        else:
            assert values is not None  # checked above: customer_id or features
            columns = self._given_features(model, values)
        assignment = assign(model, columns)
        position = int(assignment.positions[0])
        # `assign` always ranks the alternatives.
        assert assignment.alternative_positions is not None and assignment.alternative_distances is not None
        alternatives = [
            (model.segment_ids[int(p)], float(d))
            for p, d in zip(assignment.alternative_positions[0], assignment.alternative_distances[0], strict=True)
            if p >= 0
        ]
        return AssignOutcome(
            segment_id=model.segment_ids[position],
            segment_name=model.segment_names[position],
            version=version.version,
            distance=float(assignment.distances[0]),
            confidence=float(assignment.confidences[0]),
            outlier=position == model.outlier_position,
            alternatives=alternatives,
        )

    def _given_features(self, model: FrozenModel, values: dict[str, float]) -> dict[str, np.ndarray]:
        violations = Violations()
        for name in model.input_features:
            if name not in values:
                violations.add(f"features.values[{name}]", "missing: the segmentation uses it")
            elif not finite(values[name]):
                violations.add(f"features.values[{name}]", "must be a finite number")
        violations.raise_if_any()
        return {name: np.asarray([values[name]], dtype=np.float64) for name in model.input_features}

    # --- change feed --------------------------------------------------------------------------

    async def watch_changes(
        self, call: CallContext, segmentation: str, segment_ids: list[str], after_sequence: int | None
    ) -> AsyncIterator[list[ChangeRecord]]:
        """The tenant's changes as they are logged, each read of the log at once (one or more changes)."""
        violations = Violations()
        if segmentation:
            check_name(violations, "segmentation", segmentation)
        violations.check(after_sequence is None or after_sequence >= 0, "after_sequence", "0 or more")
        for index, segment_id in enumerate(segment_ids):
            violations.check(
                is_stored_text(segment_id), f"segment_ids[{index}]", "must not be empty nor hold a NUL character"
            )
        violations.raise_if_any()
        if segmentation and not await self._store.segmentation_exists(call.tenant, segmentation):
            raise segmentation_not_found(segmentation)
        with self._feed.subscribe(call.tenant) as woken:
            last = after_sequence if after_sequence is not None else await self._store.last_change_sequence(call.tenant)
            while True:
                woken.clear()
                changes = await self._store.changes_after(call.tenant, last, segmentation, segment_ids)
                if changes:
                    yield changes
                    last = max(last, changes[-1].sequence)
                    continue
                await woken.wait()

    # --- drift --------------------------------------------------------------------------------

    async def compare(
        self, call: CallContext, name: str, baseline_version: int, target_version: int | None
    ) -> Comparison:
        violations = Violations()
        check_name(violations, "name", name)
        violations.raise_if_any()
        baseline = await self.ready(call, name, baseline_version)
        base_model = self.model(baseline)
        base_keys, _, base_build = await self._store.memberships(baseline.id)
        at_build = base_build >= 0
        base_keys, base_build = base_keys[at_build], base_build[at_build]
        base_matrix = _snapshot(await self._store.snapshot(baseline.id), len(baseline.features))
        if target_version is not None:
            target = await self.ready(call, name, target_version)
            if target.id == baseline.id:
                raise InvalidArgument(
                    "baseline and target are the same version",
                    violations=[FieldViolation("target_version", "must differ from the baseline version")],
                )
            target_model = self.model(target)
            target_keys, _, target_positions = await self._store.memberships(target.id)
            at_build = target_positions >= 0
            target_keys, target_positions = target_keys[at_build], target_positions[at_build]
            target_ids = target_model.segment_ids
            shared = [f for f in baseline.features if f in target.features]
            target_matrix = _snapshot(await self._store.snapshot(target.id), len(target.features))
            target_columns = {f: target_matrix[:, target.features.index(f)] for f in shared}
        else:
            custom = [n for n in base_model.input_features if n not in BUILT_IN_FEATURES]
            table, _ = await self._customers.load_features(self._customers.pool, call.tenant, baseline.purpose, custom)
            table = _complete_rows(table, custom)
            columns = with_scores(table.columns, base_model.rfm_edges)
            target_keys = table.keys
            target_positions = assign(base_model, columns).positions if len(table) else np.zeros(0, dtype=np.int64)
            target_ids = base_model.segment_ids
            shared = list(baseline.features)
            target_columns = {f: columns[f] for f in shared}
        psi = [
            (
                feature,
                drift.population_stability(base_matrix[:, baseline.features.index(feature)], target_columns[feature]),
            )
            for feature in shared
        ]
        psi.sort(key=lambda item: -item[1])
        migration = drift.migration(
            base_keys, base_build, base_model.segment_ids, target_keys, target_positions, target_ids
        )
        return Comparison(feature_drift=psi, **migration)

    # --- helpers ------------------------------------------------------------------------------

    async def ready(self, call: CallContext, name: str, version_number: int) -> VersionRecord:
        version = await self._store.get_version(call.tenant, name, version_number, ready=True)
        if version.state != READY:
            state = "BUILDING" if version.state == BUILDING else "FAILED"
            raise FailedPrecondition(
                f"segmentation {name!r} version {version.version} is {state}, not READY",
                reason="SEGMENTATION_NOT_READY",
                metadata={"segmentation": name, "version": str(version.version), "state": state},
            )
        return version

    def model(self, version: VersionRecord) -> FrozenModel:
        model = self._models.get(version.id)
        if model is None:
            model = FrozenModel.from_json(version.model)
            self._models[version.id] = model
            if len(self._models) > self.limits.cached_models:
                self._models.popitem(last=False)
        return model

    async def latest_ready_version(self, tenant: str) -> VersionRecord | None:
        """The most recently built READY version of any segmentation of the tenant."""
        return await self._store.latest_ready_version(tenant)

    def _position(self, model: FrozenModel, name: str, segment_id: str) -> int:
        if segment_id not in model.segment_ids:
            raise NotFound(
                f"segment {segment_id!r} not found in segmentation {name!r}",
                reason="SEGMENT_NOT_FOUND",
                metadata={"segmentation": name, "segment_id": segment_id},
            )
        return model.segment_ids.index(segment_id)

    async def _view(self, version: VersionRecord, *, with_details: bool = True) -> SegmentationView:
        if version.state != READY:
            return SegmentationView(version, [], None)
        segments = await self._store.segments(version.id, with_details=with_details)
        k_scores = [tuple(item) for item in version.model.get("k_scores", [])]
        return SegmentationView(version, segments, self.model(version), k_scores)

    def _require_name(self, name: str) -> None:
        violations = Violations()
        check_name(violations, "name", name)
        violations.raise_if_any()


def _variables(rule: Rule) -> set[str]:
    """Features a rule reads; none when it does not compile (already reported)."""
    try:
        return set(compile_rules([rule])[0].variables())
    except RuleError:
        return set()


def _rule_features(rules: tuple[Rule, ...]) -> set[str]:
    return {name for rule in rules for name in _variables(rule)}


def _complete_rows(table: FeatureTable, custom: list[str]) -> FeatureTable:
    """Customers lacking one of the custom features are left out."""
    if not custom or not len(table):
        return table
    complete = np.all([~np.isnan(table.columns[name]) for name in custom], axis=0)
    return table if complete.all() else table.subset(complete)


def _snapshot(data: bytes, feature_count: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32).reshape(-1, feature_count).astype(np.float64)


def _segments_to_store(table: FeatureTable, result: BuildResult) -> SegmentsToStore:
    segments = []
    exemplars = []
    for segment in result.segments:
        segments.append(
            {
                "position": segment.position,
                "id": segment.id,
                "name": segment.name,
                "size": segment.size,
                "share": segment.share,
                "outliers": segment.outliers,
                "condition": segment.condition,
                "profile": [profile.__dict__ for profile in segment.profiles],
                "top_features": segment.top_features,
            }
        )
        for rank, (row, distance) in enumerate(zip(segment.exemplar_rows, segment.exemplar_distances, strict=True)):
            exemplars.append((segment.position, rank, int(table.keys[row]), float(distance)))
    return SegmentsToStore(
        model=result.model.to_json() | {"k_scores": result.k_scores},
        snapshot=result.snapshot,
        silhouette=result.silhouette,
        population=len(table),
        segments=segments,
        exemplars=exemplars,
    )
