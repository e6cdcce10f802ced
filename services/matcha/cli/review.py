"""`matcha review ...`: the review queue from a terminal: list, show, decide, publish, redeliver."""

import click

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.mesh import REVIEW
from matcha.review.v1 import review_pb2, review_pb2_grpc

DEFAULT_TARGET = REVIEW.local_address
STATUSES = [name.removeprefix("REVIEW_STATUS_") for name in review_pb2.ReviewStatus.keys()[1:]]


def _status(item: review_pb2.ReviewItem) -> str:
    return review_pb2.ReviewStatus.Name(item.status).removeprefix("REVIEW_STATUS_")


def _due(item: review_pb2.ReviewItem) -> str:
    return item.due_time.ToDatetime().strftime("%Y-%m-%d %H:%M")


@click.group()
def review() -> None:
    """The human review queue: nothing is published before a reviewer approved it."""


@review.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES, case_sensitive=False))
@click.option("--claimed-by", default="", help="a reviewer's subject, or - for unclaimed items")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@connection_options(DEFAULT_TARGET)
@run_async
async def list_items(statuses: tuple[str, ...], claimed_by: str, limit: int, **options) -> None:
    """List items by due time, then priority."""
    async with channel_from(options) as channel:
        reply = await review_pb2_grpc.ReviewServiceStub(channel).List(
            review_pb2.ListRequest(
                statuses=[f"REVIEW_STATUS_{status.upper()}" for status in statuses],
                claimed_by=claimed_by,
                page_size=limit,
            )
        )
    for item in reply.items:
        claim = f" claimed by {item.claim.reviewer_subject}" if item.HasField("claim") else ""
        click.echo(f"{item.id}  {_status(item):<17}  v{item.version}  due {_due(item)}  {item.title!r}{claim}")


@review.command("show")
@click.argument("item_id")
@connection_options(DEFAULT_TARGET)
@run_async
async def show(item_id: str, **options) -> None:
    """Show an item: content, provenance, versions, decisions."""
    async with channel_from(options) as channel:
        reply = await review_pb2_grpc.ReviewServiceStub(channel).Get(review_pb2.GetRequest(item_id=item_id))
    item = reply.item
    provenance = item.provenance
    click.echo(f"{item.id}  {_status(item)}  version {item.version}  due {_due(item)}")
    click.echo(f"sha256 {item.content_sha256}")
    if provenance.plan_name or provenance.model.id:
        click.echo(
            f"from plan {provenance.plan_name} v{provenance.plan_version} step {provenance.step}, "
            f"model {provenance.model.id} {provenance.model.version}, run {provenance.run_id}"
        )
    for flag in item.flags:
        click.echo(f"flag {flag.code}: {flag.message}")
    click.echo(f"\n{item.title}\n\n{item.content}")
    for version in item.versions[1:]:
        click.echo(f"\n--- version {version.number} by {version.author_subject}\n{version.diff_from_previous}")
    for decision in item.decisions:
        outcome = review_pb2.DecisionOutcome.Name(decision.outcome).removeprefix("DECISION_OUTCOME_")
        click.echo(f"decision: {outcome} of v{decision.version} by {decision.reviewer_subject}: {decision.comment}")


async def _decide(item_id: str, outcome: review_pb2.DecisionOutcome, comment: str, options: dict) -> None:
    async with channel_from(options) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        # The version shown is the version decided on: a newer one makes the service refuse (ABORTED).
        current = (await stub.Get(review_pb2.GetRequest(item_id=item_id))).item
        reply = await stub.Decide(
            review_pb2.DecideRequest(item_id=item_id, version=current.version, outcome=outcome, comment=comment)
        )
    click.echo(f"{reply.item.id}  {_status(reply.item)}  sha256 {reply.decision.content_sha256}")


@review.command("approve")
@click.argument("item_id")
@click.option("--comment", default="")
@connection_options(DEFAULT_TARGET)
@run_async
async def approve(item_id: str, comment: str, **options) -> None:
    """Approve the current version."""
    await _decide(item_id, review_pb2.DECISION_OUTCOME_APPROVE, comment, options)


@review.command("reject")
@click.argument("item_id")
@click.option("--comment", required=True)
@connection_options(DEFAULT_TARGET)
@run_async
async def reject(item_id: str, comment: str, **options) -> None:
    """Reject the current version."""
    await _decide(item_id, review_pb2.DECISION_OUTCOME_REJECT, comment, options)


@review.command("request-changes")
@click.argument("item_id")
@click.option("--comment", required=True)
@connection_options(DEFAULT_TARGET)
@run_async
async def request_changes(item_id: str, comment: str, **options) -> None:
    """Ask for a new version."""
    await _decide(item_id, review_pb2.DECISION_OUTCOME_REQUEST_CHANGES, comment, options)


def _audience(segment: str, customers) -> review_pb2.AudienceSpec | None:
    """`--segment NAME/SEGMENT` (or `NAME@VERSION/SEGMENT`) or `--customers FILE` as the request's audience."""
    if segment and customers is not None:
        raise click.UsageError("--segment and --customers name two audiences; give one")
    if customers is not None:
        ids = [line.strip() for line in customers if line.strip()]
        return review_pb2.AudienceSpec(customers=review_pb2.CustomerList(customer_ids=ids))
    if not segment:
        return None
    segmentation, _, segment_id = segment.partition("/")
    name, _, version = segmentation.partition("@")
    if not (name and segment_id and (version == "" or version.isdigit())):
        raise click.BadParameter("SEGMENTATION/SEGMENT or SEGMENTATION@VERSION/SEGMENT", param_hint="--segment")
    return review_pb2.AudienceSpec(
        segment=review_pb2.SegmentAudience(segmentation=name, version=int(version or 0), segment_id=segment_id)
    )


@review.command("publish")
@click.argument("item_id")
@click.option(
    "--segment",
    default="",
    metavar="SEGMENTATION[@VERSION]/SEGMENT",
    help="deliver to the members of this segment (latest READY version unless named)",
)
@click.option(
    "--customers", type=click.File(), default=None, help="deliver to these customers: a file of ids, one per line"
)
@connection_options(DEFAULT_TARGET)
@run_async
async def publish(item_id: str, segment: str, customers, **options) -> None:
    """Publish the approved version to the configured sinks, to an audience if one is named (members without
    consent, opted out of the channel or at its frequency cap are left out and counted)."""
    audience = _audience(segment, customers)
    async with channel_from(options) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        approved = (await stub.Get(review_pb2.GetRequest(item_id=item_id))).item.approved_sha256
        reply = await stub.Publish(
            review_pb2.PublishRequest(item_id=item_id, content_sha256=approved, audience=audience)
        )
    again = " (already published)" if reply.already_published else ""
    sinks = ", ".join(sink.sink for sink in reply.publication.sinks)
    click.echo(f"published {item_id} v{reply.publication.version} to {sinks}{again}")
    if reply.HasField("audience"):
        resolved = reply.audience
        click.echo(
            f"audience: {resolved.size:,} members (sha256 {resolved.members_sha256}); left out: "
            f"{resolved.excluded_without_consent:,} without consent, {resolved.excluded_opted_out:,} opted out, "
            f"{resolved.excluded_frequency_capped:,} at the frequency cap ({resolved.frequency_cap_messages} per "
            f"{resolved.frequency_cap_window.ToTimedelta().days} days)"
        )


@review.command("redeliver")
@click.argument("item_id")
@connection_options(DEFAULT_TARGET)
@run_async
async def redeliver(item_id: str, **options) -> None:
    """Queue an item's FAILED deliveries again (its run signal, its publication's sinks), once their cause is
    fixed: each is attempted at once, then retried with backoff as a new delivery would be."""
    async with channel_from(options) as channel:
        reply = await review_pb2_grpc.ReviewServiceStub(channel).Redeliver(review_pb2.RedeliverRequest(item_id=item_id))
    deliveries = "delivery" if reply.requeued == 1 else "deliveries"
    click.echo(f"{reply.item.id}  {reply.requeued} failed {deliveries} queued again")
