"""Audiences at publication: whom an approved item is delivered to.

A publication names a segment of a segmentation version, customers one by one, or the arm of an experiment whose
audience was resolved the same way when the experiment was made. SegmentationService, which holds
the customers with their consented purposes and channel opt-outs, streams the members the item's purpose may reach
on its channel (on behalf of the publisher, so it decides what the caller may see) and counts those it left out;
here the channel's frequency cap leaves out members that earlier publications on the channel reached often enough
lately. The members left are written by one COPY as they arrive, inside the publication's transaction, with the
SHA-256 of their sorted ids: a refusal (no member left, unknown customers, segmentation failing midway) rolls all of
it back with the publication. An experiment's audience is resolved the same way, each member stored with their arm.
"""

import dataclasses
import hashlib
import operator
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
import grpc
from asyncpg.pool import PoolConnectionProxy
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.channels import PLAINTEXT, ChannelPool, Transport
from matcha.runtime.client import error_details
from matcha.runtime.database import Database
from matcha.runtime.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Violations,
)
from matcha.runtime.governance import CallContext
from matcha.segmentation.v1 import segmentation_pb2, segmentation_pb2_grpc

MAX_LISTED_CUSTOMERS = 100_000
MAX_CUSTOMER_ID_CHARS = 128
# Unknown customers listed one by one in a refusal; the rest are counted.
MAX_LISTED_REFUSALS = 100
_PASSED_ON = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}
# Characters COPY's text format would read as something else.
_COPY_SPECIAL = ("\\", "\t", "\r")


@dataclass(frozen=True)
class AudienceSpec:
    """A segment (segmentation, version, segment id), `customer_ids`, or an experiment's arm (`experiment_id`: the arm
    is the variant whose item is published)."""

    segmentation: str = ""
    version: int = 0
    segment_id: str = ""
    customer_ids: tuple[str, ...] = ()
    # None: not an arm.
    experiment_id: str | None = None

    @property
    def listed(self) -> bool:
        return not self.segment_id and not self.segmentation and self.experiment_id is None

    @property
    def experiment_arm(self) -> bool:
        return self.experiment_id is not None


@dataclass(frozen=True)
class FrequencyCap:
    """At most `messages` publications per customer and channel within `window`; 0 messages: no cap."""

    messages: int = 2
    window: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class ResolvedAudience:
    segmentation: str
    segmentation_version: int
    segment_id: str
    size: int
    members_sha256: str
    excluded_without_consent: int
    excluded_opted_out: int
    excluded_frequency_capped: int
    cap: FrequencyCap
    # A publication to an experiment's arm.
    experiment_id: str = ""
    arm: str = ""

    def as_document(self) -> dict:
        """The audience as the sinks receive it (the members go beside it)."""
        arm = {"experiment_id": self.experiment_id, "arm": self.arm} if self.experiment_id else {}
        return {
            **arm,
            "segmentation": self.segmentation,
            "segmentation_version": self.segmentation_version,
            "segment_id": self.segment_id,
            "size": self.size,
            "members_sha256": self.members_sha256,
            "excluded": {
                "without_consent": self.excluded_without_consent,
                "opted_out": self.excluded_opted_out,
                "frequency_capped": self.excluded_frequency_capped,
            },
            "frequency_cap": {"messages": self.cap.messages, "window_seconds": self.cap.window.total_seconds()},
        }


def channel_name(channel: str) -> str:
    """The review channel (`EMAIL`) as opt-outs name it (`email`)."""
    return channel.lower()


def check_audience(violations: Violations, spec: AudienceSpec, *, arm_allowed: bool = True) -> None:
    if spec.experiment_arm:
        if violations.check(
            arm_allowed, "audience.experiment_arm", "an experiment's arm is the audience of a publication only"
        ):
            violations.check(bool(spec.experiment_id), "audience.experiment_arm.experiment_id", "must not be empty")
        return
    if spec.listed:
        path = "audience.customers.customer_ids"
        if not violations.check(
            0 < len(spec.customer_ids) <= MAX_LISTED_CUSTOMERS, path, f"1 to {MAX_LISTED_CUSTOMERS:,} customer ids"
        ):
            return
        for index, customer_id in enumerate(spec.customer_ids):
            if not 0 < len(customer_id) <= MAX_CUSTOMER_ID_CHARS:
                violations.add(f"{path}[{index}]", f"1 to {MAX_CUSTOMER_ID_CHARS} characters")
                if len(violations.items) >= MAX_LISTED_REFUSALS:
                    return
        return
    violations.check(bool(spec.segmentation), "audience.segment.segmentation", "must not be empty")
    violations.check(bool(spec.segment_id), "audience.segment.segment_id", "must not be empty")
    violations.check(spec.version >= 0, "audience.segment.version", "0 (the latest READY) or a version")


class SegmentationMembers:
    """Reads the reachable members of an audience from `SegmentationService.StreamSegmentMembers`."""

    def __init__(
        self,
        address: str | None,
        *,
        tracer_provider: TracerProvider | None = None,
        timeout_seconds: float = 300.0,
        transport: Transport = PLAINTEXT,
    ) -> None:
        self._address = address
        self._pool = ChannelPool(transport=transport, tracer_provider=tracer_provider)
        self._timeout = timeout_seconds

    def check_configured(self) -> None:
        self._configured_address()

    def _configured_address(self) -> str:
        if not self._address:
            raise Unavailable(
                "this review service resolves no audiences: MATCHA_REVIEW_SEGMENTATION_ADDRESS is not set",
                reason="SEGMENTATION_NOT_CONFIGURED",
                metadata={"setting": "MATCHA_REVIEW_SEGMENTATION_ADDRESS"},
            )
        return self._address

    def stream(self, call: CallContext, purpose: str, spec: AudienceSpec, channel: str) -> "MemberStream":
        """The members `purpose` may reach on `channel`, read with the caller's token."""
        stub = segmentation_pb2_grpc.SegmentationServiceStub(self._pool.channel(self._configured_address()))
        request = segmentation_pb2.StreamSegmentMembersRequest(
            name=spec.segmentation,
            version=spec.version,
            segment_id=spec.segment_id,
            customer_ids=list(spec.customer_ids),
            channel=channel,
        )
        metadata = tuple(dataclasses.replace(call, purpose=purpose).outgoing_metadata())
        return MemberStream(stub.StreamSegmentMembers(request, metadata=metadata, timeout=self._timeout), spec)

    async def close(self) -> None:
        await self._pool.close()


class Members(Protocol):
    """Chunks of member ids in strictly increasing order, then segmentation's summary of them."""

    @property
    def summary(self) -> segmentation_pb2.SegmentMembersSummary: ...

    def chunks(self) -> AsyncIterator[list[str]]: ...

    def cancel(self) -> None: ...


def _read_summary(
    summary: segmentation_pb2.SegmentMembersSummary | None,
) -> segmentation_pb2.SegmentMembersSummary:
    if summary is None:
        raise RuntimeError("the summary of the members is read before the members themselves")
    return summary


class MemberStream:
    """Chunks of member ids as they arrive, checked to be in strictly increasing order (so each is there once and
    the digest is of the sorted list); `summary` once they are all read."""

    def __init__(self, replies, spec: AudienceSpec) -> None:
        self._replies = replies
        self._spec = spec
        self._summary: segmentation_pb2.SegmentMembersSummary | None = None

    @property
    def summary(self) -> segmentation_pb2.SegmentMembersSummary:
        return _read_summary(self._summary)

    def cancel(self) -> None:
        """Ends the call, when the publication stops before reading it all (a refusal, a failure)."""
        self._replies.cancel()

    async def chunks(self) -> AsyncIterator[list[str]]:
        previous = None
        try:
            async for reply in self._replies:
                if reply.HasField("summary"):
                    self._summary = reply.summary
                    continue
                ids = list(reply.customer_ids)
                if not ids:
                    continue
                ordered = (previous is None or previous < ids[0]) and all(map(operator.lt, ids, ids[1:]))
                if not ordered:
                    raise Unavailable("segmentation sent members out of order", reason="SEGMENTATION_UNAVAILABLE")
                previous = ids[-1]
                yield ids
        except grpc.aio.AioRpcError as error:
            raise self._refusal(error) from None
        if self._summary is None:
            raise Unavailable("segmentation ended the members without a summary", reason="SEGMENTATION_UNAVAILABLE")

    def _refusal(self, error: grpc.aio.AioRpcError) -> MatchaError:
        """Segmentation's answer, in terms of the publisher's own request."""
        details = error_details(error)
        prefix = "audience.customers" if self._spec.listed else "audience.segment"
        if details.code == grpc.StatusCode.INVALID_ARGUMENT:
            renamed = {"name": "segmentation"}
            violations = [
                FieldViolation(f"{prefix}.{renamed.get(name, name)}", description)
                for name, description in details.field_violations.items()
            ]
            return InvalidArgument(details.message, violations=violations, reason=details.reason or None)
        if details.code in _PASSED_ON:
            return _PASSED_ON[details.code](details.message, reason=details.reason or None, metadata=details.metadata)
        return Unavailable(
            f"segmentation could not list the audience ({details.code.name}): {details.message}",
            reason="SEGMENTATION_UNAVAILABLE",
            metadata={"code": details.code.name},
            retry_after_seconds=details.retry_after_seconds or 1.0,
        )


async def write_audience(
    connection: asyncpg.Connection | PoolConnectionProxy,
    *,
    tenant: str,
    publication_id: str,
    channel: str,
    purpose: str,
    data_class: int,
    spec: AudienceSpec,
    members: MemberStream,
    cap: FrequencyCap,
) -> ResolvedAudience:
    """Stores the publication's audience in the caller's transaction: the members `members` streams, less those at
    the channel's frequency cap. Raises (and the caller's transaction rolls back) when customers of a list are
    unknown or when no member is left."""
    try:
        return await _store_audience(
            connection, tenant, publication_id, channel, purpose, data_class, spec, members, cap
        )
    finally:
        members.cancel()


async def _store_audience(
    connection: asyncpg.Connection | PoolConnectionProxy,
    tenant: str,
    publication_id: str,
    channel: str,
    purpose: str,
    data_class: int,
    spec: AudienceSpec,
    members: Members,
    cap: FrequencyCap,
    *,
    arm: str = "",
    source: str = "",
) -> ResolvedAudience:
    """A segment's or a list's audience, or an experiment's `arm` (whose members come with no version: the
    experiment's is `spec.version`); `source` names it in an EMPTY_AUDIENCE refusal."""
    key = await _new_publication_audience(
        connection, tenant, publication_id, channel, purpose, data_class, spec, cap, arm
    )
    size, capped_count, digest = await _store_audience_members(connection, tenant, channel, cap, key, members)
    summary = members.summary
    resolved = ResolvedAudience(
        segmentation=spec.segmentation,
        segmentation_version=summary.version or spec.version,
        segment_id=spec.segment_id,
        size=size,
        members_sha256=digest,
        excluded_without_consent=summary.without_consent,
        excluded_opted_out=summary.opted_out,
        excluded_frequency_capped=capped_count,
        cap=cap,
        experiment_id=spec.experiment_id or "",
        arm=arm,
    )
    _refuse_unreachable(spec, summary, resolved, channel, purpose, "published", source)
    await _record_publication_audience(connection, key, resolved)
    return resolved


async def _new_publication_audience(
    connection: asyncpg.Connection | PoolConnectionProxy,
    tenant: str,
    publication_id: str,
    channel: str,
    purpose: str,
    data_class: int,
    spec: AudienceSpec,
    cap: FrequencyCap,
    arm: str = "",
) -> int:
    # Publications on one channel of a tenant take turns from here to their commit, so two of them cannot both
    # reach a customer the cap allows one more message.
    await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"review-cap/{tenant}/{channel}")
    return await connection.fetchval(
        """INSERT INTO review_publication_audiences (publication_id, tenant, channel, purpose, data_class,
               segmentation, segmentation_version, segment_id, size, members_sha256, excluded_without_consent,
               excluded_opted_out, excluded_frequency_capped, frequency_cap_messages, frequency_cap_window,
               experiment_id, arm)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, '', 0, 0, 0, $9, $10, $11, $12) RETURNING key""",
        publication_id,
        tenant,
        channel,
        purpose,
        data_class,
        spec.segmentation,
        spec.version,
        spec.segment_id,
        cap.messages,
        cap.window,
        spec.experiment_id or "",
        arm,
    )


async def _record_publication_audience(
    connection: asyncpg.Connection | PoolConnectionProxy, key: int, resolved: ResolvedAudience
) -> None:
    await connection.execute(
        """UPDATE review_publication_audiences SET segmentation_version = $2, size = $3, members_sha256 = $4,
               excluded_without_consent = $5, excluded_opted_out = $6, excluded_frequency_capped = $7
           WHERE key = $1""",
        key,
        resolved.segmentation_version,
        resolved.size,
        resolved.members_sha256,
        resolved.excluded_without_consent,
        resolved.excluded_opted_out,
        resolved.excluded_frequency_capped,
    )


async def _store_audience_members(
    connection: asyncpg.Connection | PoolConnectionProxy,
    tenant: str,
    channel: str,
    cap: FrequencyCap,
    key: int,
    members: Members,
) -> tuple[int, int, str]:
    """COPYs the members of publication audience `key`, those at the channel's frequency cap left out; returns the
    members stored, those capped, and the digest of the stored ones."""
    capped = await _capped(connection, tenant, channel, cap, key) if cap.messages > 0 else frozenset()
    prefix = f"{key}\t"

    def lines(kept: list[str], joined: str) -> bytes:
        if any(special in joined for special in _COPY_SPECIAL) or joined.count("\n") != len(kept) - 1:
            return "".join(f"{prefix}{_copy_escape(customer)}\n" for customer in kept).encode()
        return (prefix + f"\n{prefix}".join(kept) + "\n").encode()

    return await _copy_members(
        connection, members, "review_audience_members", ["audience_key", "customer_id"], lines, capped
    )


async def _copy_members(
    connection: asyncpg.Connection | PoolConnectionProxy,
    members: Members,
    table: str,
    columns: list[str],
    lines: Callable[[list[str], str], bytes],
    capped: frozenset[str] = frozenset(),
) -> tuple[int, int, str]:
    """COPYs the streamed members less `capped` into `table` as they arrive (`lines` makes the rows of a chunk);
    returns how many were written, how many capped, and the SHA-256 of the written ids in order, joined by
    newlines."""
    digest = hashlib.sha256()
    counts = {"size": 0, "capped": 0}

    async def rows() -> AsyncIterator[bytes]:
        async for ids in members.chunks():
            kept = [customer for customer in ids if customer not in capped] if capped else ids
            counts["capped"] += len(ids) - len(kept)
            if not kept:
                continue
            joined = "\n".join(kept)
            digest.update((("\n" if counts["size"] else "") + joined).encode())
            counts["size"] += len(kept)
            yield lines(kept, joined)

    await connection.copy_to_table(table, source=rows(), columns=columns)
    return counts["size"], counts["capped"], digest.hexdigest()


def _refuse_unreachable(
    spec: AudienceSpec,
    summary: segmentation_pb2.SegmentMembersSummary,
    resolved: ResolvedAudience,
    channel: str,
    purpose: str,
    what: str,
    source: str = "",
) -> None:
    """Unknown customers of a list, or nobody left to reach: refused (the caller's transaction rolls back)."""
    if spec.listed and summary.unknown_customer_ids:
        raise _unknown_customers(spec.customer_ids, list(summary.unknown_customer_ids), what)
    if resolved.size == 0:
        source = source or (
            f"segment {spec.segment_id!r} of {spec.segmentation!r}" if not spec.listed else "the customers listed"
        )
        raise FailedPrecondition(
            f"no member of {source} may be reached on {channel} for purpose {purpose!r} "
            f"({summary.members} members: {resolved.excluded_without_consent} without consent, "
            f"{resolved.excluded_opted_out} opted out, {resolved.excluded_frequency_capped} at the frequency cap); "
            f"nothing was {what}",
            reason="EMPTY_AUDIENCE",
            metadata={
                "members": str(summary.members),
                "without_consent": str(resolved.excluded_without_consent),
                "opted_out": str(resolved.excluded_opted_out),
                "frequency_capped": str(resolved.excluded_frequency_capped),
            },
        )


async def write_experiment_audience(
    connection: asyncpg.Connection | PoolConnectionProxy,
    *,
    tenant: str,
    experiment_id: str,
    channel: str,
    purpose: str,
    spec: AudienceSpec,
    members: MemberStream,
    arm_of: Callable[[str], str],
) -> ResolvedAudience:
    """Stores an experiment's audience in the caller's transaction: each member `members` streams with their arm.
    Raises (and the caller's transaction rolls back) when customers of a list are unknown or nobody may be
    reached. The frequency cap is not applied here: it applies when an arm is published."""
    try:
        prefix = f"{_copy_escape(tenant)}\t{_copy_escape(experiment_id)}\t"

        def lines(kept: list[str], joined: str) -> bytes:
            escaped = kept
            if any(special in joined for special in _COPY_SPECIAL) or joined.count("\n") != len(kept) - 1:
                escaped = [_copy_escape(customer) for customer in kept]
            rows = zip(escaped, map(arm_of, kept), strict=True)
            return "".join([f"{prefix}{customer}\t{arm}\n" for customer, arm in rows]).encode()

        size, _, digest = await _copy_members(
            connection,
            members,
            "review_experiment_members",
            ["tenant", "experiment_id", "customer_id", "arm"],
            lines,
        )
        summary = members.summary
        resolved = ResolvedAudience(
            segmentation=spec.segmentation,
            segmentation_version=summary.version,
            segment_id=spec.segment_id,
            size=size,
            members_sha256=digest,
            excluded_without_consent=summary.without_consent,
            excluded_opted_out=summary.opted_out,
            excluded_frequency_capped=0,
            cap=FrequencyCap(0, timedelta(0)),
        )
        _refuse_unreachable(spec, summary, resolved, channel, purpose, "created")
        return resolved
    finally:
        members.cancel()


@dataclass(frozen=True)
class ExperimentAudience:
    """Where an experiment's members came from, for the publications of its arms."""

    experiment_id: str
    segmentation: str
    segmentation_version: int
    segment_id: str


class ArmMembers:
    """The members of an experiment's arm that may still be reached, read again from segmentation at publication
    (consent withdrawn or an opt-out since the experiment was made counts), 100,000 ids per call. The arm's ids are
    in byte order, so the calls' answers follow one another in that order."""

    def __init__(
        self, source: SegmentationMembers, call: CallContext, purpose: str, channel: str, members: list[str]
    ) -> None:
        self._source = source
        self._call = call
        self._purpose = purpose
        self._channel = channel
        self._members = members
        self._current: MemberStream | None = None
        self._summary: segmentation_pb2.SegmentMembersSummary | None = None

    @property
    def summary(self) -> segmentation_pb2.SegmentMembersSummary:
        return _read_summary(self._summary)

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()

    async def chunks(self) -> AsyncIterator[list[str]]:
        total = segmentation_pb2.SegmentMembersSummary(members=len(self._members))
        for start in range(0, len(self._members), MAX_LISTED_CUSTOMERS):
            spec = AudienceSpec(customer_ids=tuple(self._members[start : start + MAX_LISTED_CUSTOMERS]))
            self._current = self._source.stream(self._call, self._purpose, spec, self._channel)
            async for ids in self._current.chunks():
                yield ids
            part = self._current.summary
            # A member segmentation no longer knows (erased meanwhile) may not be reached either.
            total.without_consent += part.without_consent + len(part.unknown_customer_ids)
            total.opted_out += part.opted_out
            self._current = None
        self._summary = total


async def arm_members(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, experiment_id: str, arm: str
) -> list[str]:
    """The members recorded in an experiment's arm, in byte order."""
    buffer = await _copy_out(
        connection,
        """SELECT customer_id FROM review_experiment_members
           WHERE tenant = $1 AND experiment_id = $2 AND arm = $3
           ORDER BY customer_id COLLATE "C"
        """,
        tenant,
        experiment_id,
        arm,
    )
    lines = buffer.split("\n")
    lines.pop()
    return [_copy_unescape(line) for line in lines] if "\\" in buffer else lines


async def write_arm_audience(
    connection: asyncpg.Connection | PoolConnectionProxy,
    *,
    tenant: str,
    publication_id: str,
    channel: str,
    purpose: str,
    data_class: int,
    experiment: ExperimentAudience,
    arm: str,
    members: ArmMembers,
    cap: FrequencyCap,
) -> ResolvedAudience:
    """Stores, in the caller's transaction, the publication of an experiment's arm: the arm's members that may still
    be reached (`members`), less those at the channel's frequency cap, in byte order, with their digest. Raises
    EMPTY_AUDIENCE (the caller's transaction rolls back) when nobody is left."""
    try:
        spec = AudienceSpec(
            segmentation=experiment.segmentation,
            version=experiment.segmentation_version,
            segment_id=experiment.segment_id,
            experiment_id=experiment.experiment_id,
        )
        return await _store_audience(
            connection,
            tenant,
            publication_id,
            channel,
            purpose,
            data_class,
            spec,
            members,
            cap,
            arm=arm,
            source=f"arm {arm!r} of experiment {spec.experiment_id!r}",
        )
    finally:
        members.cancel()


async def _capped(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, channel: str, cap: FrequencyCap, own_key: int
) -> frozenset[str]:
    """Customers that `cap.messages` publications on the channel reached within the window."""
    rows = await connection.fetch(
        """SELECT customer_id FROM review_audience_members
           WHERE audience_key = ANY(ARRAY(
               SELECT key FROM review_publication_audiences
               WHERE tenant = $1 AND channel = $2 AND created_at > now() - $3::interval AND key <> $5))
           GROUP BY customer_id HAVING count(*) >= $4""",
        tenant,
        channel,
        cap.window,
        cap.messages,
        own_key,
    )
    return frozenset(row[0] for row in rows)


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _unknown_customers(given: tuple[str, ...], unknown: list[str], what: str) -> InvalidArgument:
    missing = set(unknown)
    violations = Violations()
    for index, customer_id in enumerate(given):
        if customer_id in missing and len(violations.items) < MAX_LISTED_REFUSALS:
            violations.add(f"audience.customers.customer_ids[{index}]", "unknown customer")
    return InvalidArgument(
        f"{len(unknown)} of the customers listed are unknown; nothing was {what}",
        violations=violations.items,
        reason="UNKNOWN_CUSTOMERS",
        metadata={"unknown": str(len(unknown))},
    )


async def read_audience(
    connection: asyncpg.Connection | PoolConnectionProxy, publication_id: str
) -> ResolvedAudience | None:
    row = await connection.fetchrow(
        "SELECT * FROM review_publication_audiences WHERE publication_id = $1", publication_id
    )
    if row is None:
        return None
    return ResolvedAudience(
        segmentation=row["segmentation"],
        segmentation_version=row["segmentation_version"],
        segment_id=row["segment_id"],
        size=row["size"],
        members_sha256=row["members_sha256"],
        excluded_without_consent=row["excluded_without_consent"],
        excluded_opted_out=row["excluded_opted_out"],
        excluded_frequency_capped=row["excluded_frequency_capped"],
        cap=FrequencyCap(row["frequency_cap_messages"], row["frequency_cap_window"]),
        experiment_id=row["experiment_id"],
        arm=row["arm"],
    )


async def audience_members(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, publication_id: str
) -> list[str] | None:
    """The members stored with a publication of the tenant, in byte order; None when it has no audience."""
    try:
        publication = uuid.UUID(publication_id)
    except ValueError:
        return None
    key = await connection.fetchval(
        "SELECT key FROM review_publication_audiences WHERE tenant = $1 AND publication_id = $2",
        tenant,
        publication,
    )
    if key is None:
        return None
    buffer = await _copy_out(
        connection, "SELECT customer_id FROM review_audience_members WHERE audience_key = $1 ORDER BY customer_id", key
    )
    lines = buffer.split("\n")
    lines.pop()
    if "\\" in buffer:
        lines = [_copy_unescape(line) for line in lines]
    return lines


async def _copy_out(connection: asyncpg.Connection | PoolConnectionProxy, query: str, *args) -> str:
    chunks: list[bytes] = []

    async def collect(data: bytes) -> None:
        chunks.append(data)

    await connection.copy_from_query(query, *args, output=collect)
    return b"".join(chunks).decode()


def _copy_unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, index = [], 0
    escapes = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            out.append(escapes.get(value[index + 1], value[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


async def erase_audience_customer(
    connection: asyncpg.Connection | PoolConnectionProxy, tenant: str, customer_id: str
) -> int:
    """Takes a customer out of every audience of the tenant (the digests recorded then no longer cover the lists
    kept: they describe what was published)."""
    status = await connection.execute(
        """DELETE FROM review_audience_members
           WHERE audience_key = ANY(ARRAY(SELECT key FROM review_publication_audiences WHERE tenant = $1))
             AND customer_id = $2""",
        tenant,
        customer_id,
    )
    return int(status.split()[-1])


# Per kind of record about a subject (a customer in a publication's audience), the rows `describe_kind` reads.
AUDIENCE_SUBJECT_RECORDS = (
    (
        "publication-audiences",
        """SELECT a.publication_id::text AS scope, a.data_class, ARRAY[a.purpose] AS purposes,
                  (a.created_at, a.publication_id) AS ordering,
                  jsonb_build_object('publication_id', a.publication_id, 'channel', a.channel,
                      'segmentation', a.segmentation, 'segment_id', a.segment_id, 'publish_time', a.created_at)
                      AS record
            FROM review_publication_audiences a
            JOIN review_audience_members m ON m.audience_key = a.key AND m.customer_id = $2
            WHERE a.tenant = $1""",
    ),
)


def with_audience_members(
    deliver: Callable[[Any], Awaitable[None]], database: Database
) -> Callable[[Any], Awaitable[None]]:
    """A sink's delivery with the publication's members in the document (`audience_members`), read at delivery
    rather than copied into every sink's outbox row."""

    async def deliver_with_members(entry) -> None:
        if "resolved_audience" in entry.payload:
            async with database.pool.acquire() as connection:
                members = await audience_members(connection, entry.tenant, entry.key)
            entry = dataclasses.replace(entry, payload={**entry.payload, "audience_members": members or []})
        await deliver(entry)

    return deliver_with_members
