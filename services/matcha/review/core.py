"""The review service's core: the status machine, who may decide, versions and digests, publication.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge.
Enumerations are their contract names without prefix ("PENDING", "APPROVE", "EMAIL").
"""

import asyncio
import contextlib
import dataclasses
import difflib
import functools
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from opentelemetry import trace

from matcha.review.attestation import AttestationVerifier
from matcha.review.audiences import (
    ArmMembers,
    AudienceSpec,
    FrequencyCap,
    ResolvedAudience,
    SegmentationMembers,
    arm_members,
    channel_name,
    check_audience,
    read_audience,
    write_arm_audience,
    write_audience,
)
from matcha.review.experiment_store import (
    experiment_exists,
    experiment_not_found,
    record_variant_publication,
    variant_of_item,
)
from matcha.review.records import (
    DecisionRow,
    EventRow,
    ItemDetails,
    ItemsErased,
    ListFilter,
    NewItem,
    NewVersion,
    PublicationRow,
)
from matcha.review.store import RUN_SIGNAL, SINK, ItemTransaction, ReviewStore
from matcha.runtime import page_tokens
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, holdings_of, require_describer
from matcha.runtime.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Violations,
)
from matcha.runtime.governance import CallContext, ResumeCapability

REVIEW_FLAG_PREFIX = "review."
ATTESTED_FLAG = "review.scores_attested"
STATUSES = ("PENDING", "APPROVED", "REJECTED", "CHANGES_REQUESTED", "REVISED", "EXPIRED")
OPEN_STATUSES = ("PENDING", "REVISED")
OUTCOMES = {"APPROVE": "APPROVED", "REJECT": "REJECTED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}
CHANNELS = ("EMAIL", "LANDING_PAGE", "SOCIAL_POST", "AD", "SMS", "PUSH", "OTHER")
FORMATS = ("PLAIN_TEXT", "MARKDOWN", "HTML")
EVENT_TYPES = ("SUBMITTED", "CLAIMED", "RELEASED", "DECIDED", "REVISED", "EXPIRED", "RUN_SIGNALLED", "PUBLISHED")
PRIORITY_NORMAL = 2
PRIORITIES = (1, 2, 3, 4)

REVIEWER_ROLE = "reviewer"
PUBLISHER_ROLE = "publisher"
# Releasing someone else's claim.
ADMIN_ROLE = "admin"


def content_digest(title: str, content: str) -> str:
    """SHA-256 of the title, one NUL byte, then the content (the contract's definition)."""
    return hashlib.sha256(title.encode() + b"\0" + content.encode()).hexdigest()


def provenance_digest(provenance: dict[str, Any]) -> str:
    """SHA-256 of the provenance's stored JSON, keys sorted, no whitespace, UTF-8 unescaped (the contract's)."""
    canonical = json.dumps(provenance, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def unified_diff(before: str, after: str, before_label: str, after_label: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), before_label, after_label
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class Limits:
    max_content_bytes: int = 256 * 1024
    max_title_chars: int = 500
    max_target_chars: int = 200
    max_comment_chars: int = 4000
    max_flags: int = 100
    max_subject_ids: int = 100
    max_subject_id_chars: int = 256
    default_page_size: int = 50
    max_page_size: int = 200
    default_claim_seconds: float = 15 * 60
    min_claim_seconds: float = 60
    max_claim_seconds: float = 2 * 3600


@dataclass(frozen=True)
class RunResume:
    run_id: str
    signal_key: str
    # Issued by the conductor to the run, bound to it and to the key; never shown back.
    capability: str = ""


@dataclass(frozen=True)
class SubmitInput:
    title: str
    content: str
    format: str
    channel: str
    target: str = ""
    audience: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    voice_score: float | None = None
    flags: list[dict[str, Any]] = field(default_factory=list)
    # 0: unset (NORMAL).
    priority: int = 0
    due_at: datetime | None = None
    four_eyes: bool = False
    resume: RunResume | None = None
    # GenerateResponse.attestation: the generation service's signature over content, score and flags.
    quality_attestation: str = ""
    # Data subjects the content is about or addressed to: erasing one erases the item.
    subject_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReviseInput:
    version: int
    title: str
    content: str
    # Empty for a human edit.
    provenance: dict[str, Any] = field(default_factory=dict)
    comment: str = ""
    resume: RunResume | None = None
    flags: list[dict[str, Any]] | None = None
    voice_score: float | None = None


@dataclass(frozen=True)
class ContentEdit:
    title: str
    content: str


@dataclass(frozen=True)
class ReviewSignal:
    """What a waiting run learns of a decision (the contract's ReviewSignal)."""

    item_id: str
    status: str
    version: int
    title: str
    content: str
    content_sha256: str
    comment: str
    reviewer_subject: str
    decide_time: datetime
    provenance_sha256: str = ""


SignalEncoder = Callable[[ReviewSignal], dict[str, Any]]


class PublishedFiles(Protocol):
    """What a file sink wrote for items: read for the data map, deleted on erasure."""

    async def written(self, tenant: str, item_ids: list[str]) -> dict[str, tuple[str, dict]]: ...

    async def forget(self, tenant: str, item_ids: list[str]) -> int: ...


class ReviewCore:
    def __init__(
        self,
        store: ReviewStore,
        limits: Limits,
        *,
        sla_hours: dict[int, float],
        sinks: list[str],
        encode_signal: SignalEncoder,
        attestations: AttestationVerifier | None = None,
        four_eyes_off_tenants: frozenset[str] = frozenset(),
        published_files: PublishedFiles | None = None,
        audiences: SegmentationMembers | None = None,
        frequency_caps: Callable[[str], FrequencyCap] = lambda channel: FrequencyCap(),
    ) -> None:
        self._audiences = audiences or SegmentationMembers(None)
        self._frequency_caps = frequency_caps
        self._published_files = published_files
        self._attestations = attestations
        self._four_eyes_off = four_eyes_off_tenants
        self._store = store
        self.limits = limits
        self._sla_hours = sla_hours
        self.sinks = list(sinks)
        self._encode_signal = encode_signal

    # -- submit, read ----------------------------------------------------------------------------

    async def submit(self, call: CallContext, submission: SubmitInput) -> tuple[ItemDetails, bool]:
        violations = Violations()
        self._check_text(violations, "title", "content", submission.title, submission.content)
        violations.check(submission.format in FORMATS or submission.format == "", "format", "unknown format")
        violations.check(submission.channel in CHANNELS, "channel", f"one of {', '.join(CHANNELS)}")
        violations.check(
            len(submission.target) <= self.limits.max_target_chars,
            "target",
            f"at most {self.limits.max_target_chars} characters",
        )
        violations.check(submission.priority in (0, *PRIORITIES), "priority", "unknown priority")
        self._check_scores(violations, submission.voice_score, submission.flags)
        now = datetime.now(UTC)
        if submission.due_at is not None:
            violations.check(submission.due_at > now, "due_time", "must be in the future")
        self._check_resume(call, violations, "resume", submission.resume)
        self._check_subject_ids(violations, submission.subject_ids)
        violations.raise_if_any("submission has invalid fields")
        flags = submission.flags
        if submission.quality_attestation:
            flags = [*flags, self._attested(call, submission)]

        priority = submission.priority or PRIORITY_NORMAL
        resume = submission.resume or RunResume("", "", "")
        item = NewItem(
            format=submission.format or "PLAIN_TEXT",
            channel=submission.channel,
            target=submission.target,
            audience=submission.audience,
            provenance=submission.provenance,
            voice_score=submission.voice_score,
            flags=flags,
            priority=priority,
            due_at=submission.due_at or now + timedelta(hours=self._sla_hours[priority]),
            # The tenant's policy, which a submitter can make stricter but never lift.
            four_eyes=submission.four_eyes or call.tenant not in self._four_eyes_off,
            submitter=call.principal.subject,
            data_class=int(call.data_class),
            purpose=call.purpose,
            resume_run_id=resume.run_id,
            resume_signal_key=resume.signal_key,
            resume_capability=resume.capability,
            subject_ids=sorted(set(submission.subject_ids)),
        )
        version = NewVersion(
            title=submission.title,
            content=submission.content,
            content_sha256=content_digest(submission.title, submission.content),
            origin="AI_DRAFT",
            author=call.principal.subject,
            provenance=submission.provenance,
            comment="",
            diff="",
        )
        item_id, created = await self._store.submit(call.tenant, item, version, call.idempotency_key or None)
        return await self._store.get(call.tenant, item_id, full=False), created

    async def get(self, call: CallContext, item_id: str) -> ItemDetails:
        return await self._store.get(call.tenant, item_id, full=True)

    async def list_items(
        self,
        call: CallContext,
        *,
        statuses: list[str],
        channel: str,
        segment_id: str,
        due_before: datetime | None,
        claimed_by: str,
        page_size: int,
        page_token: str,
    ) -> tuple[list[ItemDetails], str]:
        violations = Violations()
        for index, status in enumerate(statuses):
            violations.check(status in STATUSES, f"statuses[{index}]", f"unknown status {status}")
        violations.check(channel in CHANNELS or channel == "", "channel", "unknown channel")
        violations.check(
            0 <= page_size <= self.limits.max_page_size,
            "page_size",
            f"1 to {self.limits.max_page_size}",
        )
        where = ListFilter(
            statuses=list(statuses),
            channel=channel,
            segment_id=segment_id,
            due_before=due_before,
            claimed_by=None if not claimed_by else ("" if claimed_by == "-" else claimed_by),
        )
        listing = page_tokens.listing_key("items", dataclasses.asdict(where))
        after = _item_position(violations, page_tokens.decode(violations, page_token, listing))
        violations.raise_if_any("list request has invalid fields")
        size = page_size or self.limits.default_page_size
        rows = await self._store.list_items(call.tenant, where, size, after)
        page, more = rows[:size], len(rows) > size
        last = page[-1].item if page else None
        position = [last.due_at.isoformat(), last.priority, str(last.id)] if last else None
        token = page_tokens.encode(listing, position) if more and position else ""
        return page, token

    # -- claims ----------------------------------------------------------------------------------

    async def claim(self, call: CallContext, item_id: str, ttl_seconds: float | None) -> ItemDetails:
        ttl = self.limits.default_claim_seconds if ttl_seconds is None else ttl_seconds
        violations = Violations()
        violations.check(
            self.limits.min_claim_seconds <= ttl <= self.limits.max_claim_seconds, "ttl", "1 minute to 2 hours"
        )
        violations.raise_if_any("claim has invalid fields")
        call.require_role(REVIEWER_ROLE)
        async with self._store.change(call.tenant, item_id) as change:
            item = change.item
            self._require_open(item.id, item.status, "claimed")
            self._require_not_claimed_by_other(call, change)
            now = datetime.now(UTC)
            expires = now + timedelta(seconds=ttl)
            await change.update(claimed_by=call.principal.subject, claimed_at=now, claim_expires_at=expires)
            await change.add_event("CLAIMED", item.status, item.version, call.principal.subject)
        return await self._store.get(call.tenant, item_id, full=False)

    async def release(self, call: CallContext, item_id: str) -> ItemDetails:
        async with self._store.change(call.tenant, item_id) as change:
            item = change.item
            claimant = _active_claimant(change)
            if claimant is not None:
                if claimant != call.principal.subject and ADMIN_ROLE not in call.principal.roles:
                    raise _claimed_by_other(item.id, claimant)
                await change.update(claimed_by=None, claimed_at=None, claim_expires_at=None)
                await change.add_event("RELEASED", item.status, item.version, call.principal.subject)
        return await self._store.get(call.tenant, item_id, full=False)

    async def redeliver(self, call: CallContext, item_id: str) -> tuple[ItemDetails, int]:
        """Queues the item's FAILED deliveries again (the role table admits operators and admins)."""
        requeued = await self._store.redeliver(call.tenant, item_id)
        if not requeued:
            raise FailedPrecondition(
                f"review item {item_id} has no FAILED delivery to queue again",
                reason="NOTHING_TO_REDELIVER",
                metadata={"item_id": item_id},
            )
        return await self._store.get(call.tenant, item_id, full=False), requeued

    # -- decisions -------------------------------------------------------------------------------

    async def decide(
        self,
        call: CallContext,
        item_id: str,
        *,
        version: int,
        outcome: str,
        comment: str,
        edit: ContentEdit | None,
    ) -> tuple[ItemDetails, DecisionRow]:
        violations = Violations()
        violations.check(outcome in OUTCOMES, "outcome", "approve, reject or request changes")
        violations.check(version > 0, "version", "the version the reviewer saw, from 1")
        violations.check(
            len(comment) <= self.limits.max_comment_chars,
            "comment",
            f"at most {self.limits.max_comment_chars} characters",
        )
        if outcome in ("REJECT", "REQUEST_CHANGES"):
            violations.check(bool(comment.strip()), "comment", "required to reject or request changes")
        if edit is not None and violations.check(outcome == "APPROVE", "edit", "only an approval may carry an edit"):
            self._check_text(violations, "edit.title", "edit.content", edit.title, edit.content)
        violations.raise_if_any("decision has invalid fields")
        call.require_role(REVIEWER_ROLE)

        expired = False
        async with self._store.change(call.tenant, item_id) as change:
            item = change.item
            if call.idempotency_key:
                earlier = await change.decision_with_key(call.idempotency_key)
                if earlier is not None:
                    return await self._store.get(call.tenant, item_id, full=False), earlier
            self._require_open(item.id, item.status, "decided")
            if item.due_at <= datetime.now(UTC):
                await self._expire(change)
                expired = True
            else:
                decision = await self._record_decision(call, change, version, outcome, comment, edit)
        if expired:
            raise _wrong_status(item.id, "EXPIRED", "decided")
        return await self._store.get(call.tenant, item_id, full=False), decision

    async def _record_decision(
        self,
        call: CallContext,
        change: ItemTransaction,
        version: int,
        outcome: str,
        comment: str,
        edit: ContentEdit | None,
    ) -> DecisionRow:
        item = change.item
        subject = call.principal.subject
        if item.four_eyes and subject in (item.submitter, item.version_author):
            raise PermissionDenied(
                "four-eyes rule: a reviewer may not decide on content they submitted or wrote",
                reason="FOUR_EYES",
                metadata={"item_id": item.id, "subject": subject},
            )
        self._require_not_claimed_by_other(call, change)
        self._require_current_version(item.id, item.version, version)

        decided_version, title, content, digest = item.version, item.title, item.content, item.content_sha256
        if edit is not None and (edit.title, edit.content) != (item.title, item.content):
            if item.four_eyes:
                return await self._propose_edit(call, change, version, comment, edit)
            decided_version = item.version + 1
            title, content, digest = edit.title, edit.content, content_digest(edit.title, edit.content)
            await change.add_version(
                decided_version,
                NewVersion(
                    title=title,
                    content=content,
                    content_sha256=digest,
                    origin="HUMAN_EDIT",
                    author=subject,
                    provenance={},
                    comment=comment,
                    diff=unified_diff(item.content, content, f"v{item.version}", f"v{decided_version}"),
                ),
                None,
            )
        status = OUTCOMES[outcome]
        role = REVIEWER_ROLE if REVIEWER_ROLE in call.principal.roles else ADMIN_ROLE
        # The text decided on came from the latest AI-produced version: an approval covers its provenance too.
        drafted = await change.latest_ai_version()
        provenance_sha256 = provenance_digest(drafted.provenance) if status == "APPROVED" else ""
        decision = await change.add_decision(
            outcome, comment, subject, role, decided_version, digest, call.idempotency_key or None, provenance_sha256
        )
        columns: dict[str, Any] = {
            "status": status,
            "version": decided_version,
            "claimed_by": None,
            "claimed_at": None,
            "claim_expires_at": None,
        }
        if status == "APPROVED":
            columns.update(
                approved_version=decided_version,
                approved_sha256=digest,
                approved_provenance_sha256=provenance_sha256,
                approved_diff=unified_diff(
                    drafted.content, content, f"v{drafted.number} ({drafted.origin.lower()})", f"v{decided_version}"
                ),
            )
        await change.update(**columns)
        await change.add_event("DECIDED", status, decided_version, subject, decision.id)
        approved = status == "APPROVED"
        await self._signal_run(
            change,
            ReviewSignal(
                item_id=item.id,
                status=status,
                version=decided_version,
                title=title if approved else "",
                content=content if approved else "",
                content_sha256=digest,
                comment=comment,
                reviewer_subject=subject,
                decide_time=decision.decided_at,
                provenance_sha256=provenance_sha256,
            ),
        )
        return decision

    async def _propose_edit(
        self, call: CallContext, change: ItemTransaction, version: int, comment: str, edit: ContentEdit
    ) -> DecisionRow:
        """Under four-eyes an approver's edit is a new version by them, which someone else must approve."""
        item = change.item
        subject = call.principal.subject
        number = item.version + 1
        await change.add_version(
            number,
            NewVersion(
                title=edit.title,
                content=edit.content,
                content_sha256=content_digest(edit.title, edit.content),
                origin="HUMAN_EDIT",
                author=subject,
                provenance={},
                comment=comment,
                diff=unified_diff(item.content, edit.content, f"v{item.version}", f"v{number}"),
            ),
            None,
        )
        role = REVIEWER_ROLE if REVIEWER_ROLE in call.principal.roles else ADMIN_ROLE
        # The approval stands for the version it was given on; the edited version waits for another reviewer.
        decision = await change.add_decision(
            "APPROVE", comment, subject, role, version, item.content_sha256, call.idempotency_key or None
        )
        await change.update(status="REVISED", version=number, claimed_by=None, claimed_at=None, claim_expires_at=None)
        await change.add_event("REVISED", "REVISED", number, subject, decision.id)
        return decision

    async def revise(self, call: CallContext, item_id: str, revision: ReviseInput) -> ItemDetails:
        violations = Violations()
        violations.check(revision.version > 0, "version", "the version changes were requested on, from 1")
        self._check_text(violations, "title", "content", revision.title, revision.content)
        violations.check(
            len(revision.comment) <= self.limits.max_comment_chars,
            "comment",
            f"at most {self.limits.max_comment_chars} characters",
        )
        self._check_scores(violations, revision.voice_score, revision.flags or [])
        self._check_resume(call, violations, "resume", revision.resume)
        violations.raise_if_any("revision has invalid fields")

        async with self._store.change(call.tenant, item_id) as change:
            item = change.item
            if call.idempotency_key and await change.version_with_key(call.idempotency_key) is not None:
                return await self._store.get(call.tenant, item_id, full=False)
            if item.status != "CHANGES_REQUESTED":
                raise _wrong_status(item.id, item.status, "revised", expected="CHANGES_REQUESTED")
            self._require_current_version(item.id, item.version, revision.version)
            number = item.version + 1
            await change.add_version(
                number,
                NewVersion(
                    title=revision.title,
                    content=revision.content,
                    content_sha256=content_digest(revision.title, revision.content),
                    origin="REGENERATED" if revision.provenance else "HUMAN_EDIT",
                    author=call.principal.subject,
                    provenance=revision.provenance,
                    comment=revision.comment,
                    diff=unified_diff(item.content, revision.content, f"v{item.version}", f"v{number}"),
                ),
                call.idempotency_key or None,
            )
            columns: dict[str, Any] = {"status": "REVISED", "version": number}
            if revision.resume is not None:
                columns.update(
                    resume_run_id=revision.resume.run_id,
                    resume_signal_key=revision.resume.signal_key,
                    resume_capability=revision.resume.capability,
                )
            if revision.flags is not None:
                columns["flags"] = revision.flags
            if revision.voice_score is not None:
                columns["voice_score"] = revision.voice_score
            await change.update(**columns)
            await change.add_event("REVISED", "REVISED", number, call.principal.subject)
        return await self._store.get(call.tenant, item_id, full=False)

    # -- expiry ----------------------------------------------------------------------------------

    async def sweep(self, now: datetime | None = None, batch: int = 500) -> int:
        """Expires open items past their due time (never approves them) and drops lapsed claims."""
        now = now or datetime.now(UTC)
        expired = 0
        for tenant, item_id in await self._store.overdue_items(now, batch):
            async with self._store.change(tenant, item_id) as change:
                # Decided or revised meanwhile: the row lock makes this check current.
                if change.item.status in OPEN_STATUSES and change.item.due_at <= now:
                    await self._expire(change)
                    expired += 1
        await self._store.release_lapsed_claims(now)
        return expired

    async def _expire(self, change: ItemTransaction) -> None:
        item = change.item
        await change.update(status="EXPIRED", claimed_by=None, claimed_at=None, claim_expires_at=None)
        await change.add_event("EXPIRED", "EXPIRED", item.version, "")
        await self._signal_run(
            change,
            ReviewSignal(
                item_id=item.id,
                status="EXPIRED",
                version=item.version,
                title="",
                content="",
                content_sha256=item.content_sha256,
                comment="",
                reviewer_subject="",
                decide_time=datetime.now(UTC),
            ),
        )

    async def _signal_run(self, change: ItemTransaction, signal: ReviewSignal) -> None:
        """Queues the signal in the decision's transaction; the dispatcher delivers it."""
        item = change.item
        if item.resume_run_id:
            await change.enqueue(
                RUN_SIGNAL,
                item.resume_run_id,
                item.resume_signal_key,
                self._encode_signal(signal),
                capability=item.resume_capability,
            )

    # -- publication -----------------------------------------------------------------------------

    async def publish(
        self,
        call: CallContext,
        item_id: str,
        content_sha256: str,
        sinks: list[str],
        audience: AudienceSpec | None = None,
        provenance_sha256: str = "",
    ) -> tuple[PublicationRow, bool, ResolvedAudience | None]:
        violations = Violations()
        violations.check(bool(content_sha256), "content_sha256", "the digest of the approved content is required")
        for index, sink in enumerate(sinks):
            violations.check(
                sink in self.sinks, f"sinks[{index}]", f"unknown sink {sink!r}; configured: {', '.join(self.sinks)}"
            )
        if audience is not None:
            check_audience(violations, audience)
        violations.raise_if_any("publication has invalid fields")
        call.require_role(PUBLISHER_ROLE)
        if audience is not None:
            self._audiences.check_configured()
        already = False
        resolved = None
        async with self._store.change(call.tenant, item_id) as change:
            item = change.item
            if item.status != "APPROVED":
                raise _wrong_status(item.id, item.status, "published", expected="APPROVED")
            if item.four_eyes and call.principal.subject == await change.approver():
                raise PermissionDenied(
                    "four-eyes rule: whoever approved an item does not publish it",
                    reason="FOUR_EYES",
                    metadata={"item_id": item.id, "subject": call.principal.subject},
                )
            if content_sha256 != item.approved_sha256:
                raise FailedPrecondition(
                    "the content being published is not the content approved",
                    reason="CONTENT_NOT_APPROVED",
                    metadata={"item_id": item.id, "approved_sha256": item.approved_sha256 or ""},
                )
            drafted = await change.latest_ai_version()
            self._require_approved_provenance(change, drafted.provenance, provenance_sha256)
            earlier = await change.publication()
            if earlier is not None:
                already = True
                resolved = await read_audience(change.connection, earlier)
            else:
                variant = await self._experiment_variant(change, audience)
                assert item.approved_version is not None  # recorded with the APPROVED status checked above
                approved = await change.version(item.approved_version)
                trace_id = _current_trace_id()
                publication_id = await change.add_publication(
                    approved.number, approved.content_sha256, call.principal.subject, trace_id
                )
                if variant is not None:
                    channel = channel_name(item.channel)
                    members = await arm_members(change.connection, item.tenant, variant.experiment_id, variant.label)
                    resolved = await write_arm_audience(
                        change.connection,
                        tenant=item.tenant,
                        publication_id=publication_id,
                        channel=channel,
                        purpose=item.purpose,
                        data_class=item.data_class,
                        experiment=variant.audience,
                        arm=variant.label,
                        members=ArmMembers(self._audiences, call, item.purpose, channel, members),
                        cap=self._frequency_caps(channel),
                    )
                    await record_variant_publication(change.connection, item.tenant, variant, publication_id)
                elif audience is not None:
                    channel = channel_name(item.channel)
                    resolved = await write_audience(
                        change.connection,
                        tenant=item.tenant,
                        publication_id=publication_id,
                        channel=channel,
                        purpose=item.purpose,
                        data_class=item.data_class,
                        spec=audience,
                        members=self._audiences.stream(call, item.purpose, audience, channel),
                        cap=self._frequency_caps(channel),
                    )
                document = {
                    "publication_id": publication_id,
                    "item_id": item.id,
                    "tenant": item.tenant,
                    "version": approved.number,
                    "title": approved.title,
                    "content": approved.content,
                    "content_sha256": approved.content_sha256,
                    "format": item.format,
                    "channel": item.channel,
                    "target": item.target,
                    "audience": item.audience,
                    # The provenance the approved text came from, and its digest as approved.
                    "provenance": drafted.provenance,
                    "provenance_sha256": item.approved_provenance_sha256 or provenance_digest(drafted.provenance),
                    "publisher_subject": call.principal.subject,
                    "published_at": datetime.now(UTC).isoformat(),
                    "trace_id": trace_id,
                }
                if resolved is not None:
                    # The members themselves are added when a sink is delivered (read from the audience's rows).
                    document["resolved_audience"] = resolved.as_document()
                for sink in sinks or self.sinks:
                    await change.enqueue(SINK, sink, publication_id, document, publication_id=publication_id)
                await change.add_event("PUBLISHED", item.status, item.version, call.principal.subject)
        details = await self._store.get(call.tenant, item_id, full=False)
        assert details.publication is not None  # published above, or earlier
        return details.publication, already, resolved

    @staticmethod
    def _require_approved_provenance(change: ItemTransaction, provenance: dict[str, Any], given: str) -> None:
        """What is published came from the data and models approved: the provenance's digest is the one recorded
        with the approval (items approved before approvals recorded it have none to compare)."""
        item = change.item
        current = provenance_digest(provenance)
        approved = item.approved_provenance_sha256
        if (approved is not None and current != approved) or (given and given != (approved or current)):
            raise FailedPrecondition(
                "the provenance being published is not the provenance approved",
                reason="PROVENANCE_NOT_APPROVED",
                metadata={"item_id": item.id, "approved_provenance_sha256": approved or ""},
            )

    @staticmethod
    async def _experiment_variant(change: ItemTransaction, audience: AudienceSpec | None):
        """The experiment variant the item is published as, when the audience names an arm. A variant of an
        experiment goes to its own arm and nowhere else; the arm is never the caller's choice, so neither another
        variant's arm nor the holdout can be named."""
        item = change.item
        variant = await variant_of_item(change.connection, item.tenant, item.id)
        if audience is not None and audience.experiment_id is not None:
            if variant is None or variant.experiment_id != audience.experiment_id:
                if not await experiment_exists(change.connection, item.tenant, audience.experiment_id):
                    raise experiment_not_found(audience.experiment_id)
                raise InvalidArgument(
                    f"item {item.id} is not a variant of experiment {audience.experiment_id!r}; nothing was published",
                    violations=[
                        FieldViolation("audience.experiment_arm.experiment_id", "the item is not one of its variants")
                    ],
                    reason="NOT_A_VARIANT",
                    metadata={"item_id": item.id, "experiment_id": audience.experiment_id},
                )
            return variant
        if variant is not None:
            raise FailedPrecondition(
                f"item {item.id} is variant {variant.label!r} of experiment {variant.experiment_id!r}: it is published "
                "to its arm only (audience.experiment_arm)",
                reason="EXPERIMENT_VARIANT",
                metadata={"item_id": item.id, "experiment_id": variant.experiment_id, "arm": variant.label},
            )
        return None

    # -- data subjects ---------------------------------------------------------------------------

    async def erase_subject(self, call: CallContext, subject_id: str) -> ItemsErased:
        check_subject_id(subject_id)
        call.require_role(ADMIN_ROLE)
        return await self._store.erase_subject(call.tenant, subject_id, functools.partial(self._forget, call.tenant))

    async def _forget(self, tenant: str, item_ids: list[str]) -> int:
        return await self._published_files.forget(tenant, item_ids) if self._published_files else 0

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        holdings, items = await self._store.describe_subject(call.tenant, subject_id, call.data_class)
        written = {}
        if self._published_files is not None:
            written = await self._published_files.written(call.tenant, [item.id for item in items])
        files = []
        for item in items:
            if item.id in written:
                path, document = written[item.id]
                files.append(
                    (item.data_class, (item.purpose,), {"item_id": item.id, "path": path, "document": document})
                )
        holdings += holdings_of("published-files", files, ceiling=call.data_class)
        return cap_exports(holdings)

    # -- events ----------------------------------------------------------------------------------

    async def watch(
        self,
        call: CallContext,
        *,
        item_id: str,
        types: list[str],
        after_sequence: int,
        poll_seconds: float = 5.0,
    ) -> AsyncIterator[EventRow]:
        violations = Violations()
        for index, event_type in enumerate(types):
            violations.check(event_type in EVENT_TYPES, f"types[{index}]", f"unknown event type {event_type}")
        violations.check(after_sequence >= 0, "after_sequence", "must not be negative")
        violations.raise_if_any("watch request has invalid fields")
        if item_id:
            await self._store.get(call.tenant, item_id, full=False)  # NOT_FOUND before streaming
        with self._store.events.subscribe(call.tenant) as woken:
            last = after_sequence or await self._store.last_sequence(call.tenant)
            while True:
                woken.clear()
                events = await self._store.events_after(call.tenant, last, item_id, types)
                for event in events:
                    yield event
                if events:
                    last = events[-1].sequence
                    continue
                # The poll covers a notification lost while the listener reconnects.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), poll_seconds)

    # -- checks ----------------------------------------------------------------------------------

    def _check_text(self, violations: Violations, title_field: str, content_field: str, title: str, content: str):
        violations.check(
            len(title) <= self.limits.max_title_chars, title_field, f"at most {self.limits.max_title_chars} characters"
        )
        if violations.check(bool(content.strip()), content_field, "must not be empty"):
            violations.check(
                len(content.encode()) <= self.limits.max_content_bytes,
                content_field,
                f"at most {self.limits.max_content_bytes} bytes",
            )

    def _check_scores(self, violations: Violations, voice_score: float | None, flags: list[dict[str, Any]]):
        if voice_score is not None:
            violations.check(0 <= voice_score <= 100, "voice_score", "0 to 100")
        violations.check(len(flags) <= self.limits.max_flags, "flags", f"at most {self.limits.max_flags}")
        for index, flag in enumerate(flags):
            violations.check(bool(flag.get("code")), f"flags[{index}].code", "must not be empty")
            violations.check(
                not str(flag.get("code", "")).startswith(REVIEW_FLAG_PREFIX),
                f"flags[{index}].code",
                f"codes starting with {REVIEW_FLAG_PREFIX!r} are set by the review service only",
            )

    def _attested(self, call: CallContext, submission: SubmitInput) -> dict[str, Any]:
        """The flag that tells reviewers the score and flags were signed by the generation service."""
        if self._attestations is None:
            raise FailedPrecondition("quality attestations are not verified here", reason="ATTESTATION_KEY_MISSING")
        attestation = self._attestations.verify(
            submission.quality_attestation,
            tenant=call.tenant,
            content=submission.content,
            voice_score=submission.voice_score,
            flags=submission.flags,
        )
        return {
            "code": ATTESTED_FLAG,
            "message": f"voice score and quality flags computed and signed by the generation service "
            f"({attestation.model})",
            "severity": "FLAG_SEVERITY_INFO",
        }

    def _check_subject_ids(self, violations: Violations, subject_ids: list[str]) -> None:
        limits = self.limits
        violations.check(len(subject_ids) <= limits.max_subject_ids, "subject_ids", f"at most {limits.max_subject_ids}")
        for index, subject_id in enumerate(subject_ids):
            violations.check(
                0 < len(subject_id) <= limits.max_subject_id_chars and "\x00" not in subject_id,
                f"subject_ids[{index}]",
                f"1 to {limits.max_subject_id_chars} characters, no NUL",
            )

    @staticmethod
    def _check_resume(call: CallContext, violations: Violations, field_path: str, resume: RunResume | None) -> None:
        if resume is None:
            return
        violations.check(bool(resume.run_id), f"{field_path}.run_id", "must not be empty")
        violations.check(0 < len(resume.signal_key) <= 256, f"{field_path}.signal_key", "1 to 256 characters")
        # Naming a run takes the capability the conductor gave that run for that key; the conductor verifies
        # its signature when the decision is delivered, so a forged one resumes nothing.
        granted = ResumeCapability.read(resume.capability)
        violations.check(
            granted is not None
            and (granted.tenant, granted.run_id, granted.key) == (call.tenant, resume.run_id, resume.signal_key),
            f"{field_path}.capability",
            "the resume capability the conductor issued to this run for this key is required",
        )

    @staticmethod
    def _require_open(item_id: str, status: str, action: str) -> None:
        if status not in OPEN_STATUSES:
            raise _wrong_status(item_id, status, action)

    @staticmethod
    def _require_current_version(item_id: str, current: int, seen: int) -> None:
        if seen != current:
            raise Aborted(
                f"version {seen} is stale: the item is at version {current}",
                reason="STALE_VERSION",
                metadata={"item_id": item_id, "current_version": str(current), "version": str(seen)},
            )

    @staticmethod
    def _require_not_claimed_by_other(call: CallContext, change: ItemTransaction) -> None:
        claimant = _active_claimant(change)
        if claimant is not None and claimant != call.principal.subject:
            raise _claimed_by_other(change.item.id, claimant)


def _current_trace_id() -> str:
    """The trace of the request being served, as hex; empty when it is not traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _active_claimant(change: ItemTransaction) -> str | None:
    item = change.item
    if item.claimed_by and item.claim_expires_at and item.claim_expires_at > datetime.now(UTC):
        return item.claimed_by
    return None


def _claimed_by_other(item_id: str, claimant: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"item is claimed by {claimant}", reason="CLAIMED_BY_OTHER", metadata={"item_id": item_id, "claimant": claimant}
    )


def _wrong_status(item_id: str, status: str, action: str, expected: str = "PENDING or REVISED") -> FailedPrecondition:
    return FailedPrecondition(
        f"item is {status}; only {expected} items can be {action}",
        reason="WRONG_STATUS",
        metadata={"item_id": item_id, "status": status, "expected": expected},
    )


def _item_position(violations: Violations, position) -> tuple[datetime, int, uuid.UUID] | None:
    """The (due time, priority, item id) a List page starts after."""
    if position is None:
        return None
    try:
        due, priority, item_id = position
        return datetime.fromisoformat(due), int(priority), uuid.UUID(item_id)
    except (ValueError, TypeError):
        violations.add("page_token", page_tokens.INVALID)
        return None
