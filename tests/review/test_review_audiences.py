"""Audiences at publication, on the real review and segmentation services: a segment's members or a list of
customers resolved when an approved item is published, members without consent for the item's purpose, opted out
of its channel or at the channel's frequency cap left out and counted, the rest stored with their digest, delivered
to the sink and usable as an experiment's audience; refusals write nothing."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.review.v1 import review_pb2
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.review.conftest import REVIEWER, draft, eventually
from tests.review.test_review_cli import invoke as invoke_review
from tests.segmentation.conftest import segmentation_server, segmentation_settings  # noqa: F401
from tests.support import refused

PUBLISHER = ("publisher",)
CUSTOMERS = [f"c-{number:02d}" for number in range(12)]
CAMPAIGN = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
LISTENING_ONLY = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["listening"])


@pytest.fixture
async def audience_review(review_settings, start_review, segmentation_server, isolated_database, tmp_path):  # noqa: F811
    """A review service that resolves audiences with segmentation, delivering to its own file sink."""
    settings = review_settings(
        database_url=isolated_database,
        review_segmentation_address=f"127.0.0.1:{segmentation_server.port}",
        review_publish_dir=tmp_path / "published",
    )
    async with start_review(settings) as (server, _):
        yield server, settings.review_publish_dir, segmentation_server


async def customer_base(connect, segmentation_server, tenant) -> None:  # noqa: F811
    """Twelve customers who bought once, all in segment `buyers` of `audience`; after the build two withdraw their
    consent to `campaign` (keeping `listening`), one opts out of e-mail and one out of text messages."""
    segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_server, tenant))
    start = datetime(2026, 3, 2, tzinfo=UTC)
    transactions = []
    for number, customer in enumerate(CUSTOMERS):
        transaction = seg_pb.Transaction(id=f"t-{number}", customer_id=customer, amount=20.0)
        transaction.time.FromDatetime(start + timedelta(days=number))
        transactions.append(transaction)
    await segmentation.IngestTransactions(
        seg_pb.IngestTransactionsRequest(transactions=transactions, default_policy=CAMPAIGN)
    )
    await segmentation.BuildSegmentation(
        seg_pb.BuildSegmentationRequest(
            name="audience",
            rules=seg_pb.RulesConfig(
                rules=[seg_pb.SegmentRule(id="buyers", name="Buyers", condition="frequency >= 1")]
            ),
        )
    )
    await segmentation.IngestCustomers(
        seg_pb.IngestCustomersRequest(
            customers=[
                seg_pb.Customer(id="c-02", policy=CAMPAIGN, opted_out_channels=["email"]),
                seg_pb.Customer(id="c-03", policy=CAMPAIGN, opted_out_channels=["sms"]),
            ]
        )
    )
    # Consent is withdrawn by whoever records it for the purpose kept.
    listening = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation_server, tenant, purpose="listening"))
    await listening.IngestCustomers(
        seg_pb.IngestCustomersRequest(
            customers=[seg_pb.Customer(id=customer, policy=LISTENING_ONLY) for customer in ("c-00", "c-01")]
        )
    )


def segment(segment_id="buyers", segmentation="audience", version=0) -> review_pb2.AudienceSpec:
    return review_pb2.AudienceSpec(
        segment=review_pb2.SegmentAudience(segmentation=segmentation, version=version, segment_id=segment_id)
    )


def customers(ids) -> review_pb2.AudienceSpec:
    return review_pb2.AudienceSpec(customers=review_pb2.CustomerList(customer_ids=ids))


def digest(members) -> str:
    return hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()


async def approved(review_for, server, tenant, channel=review_pb2.CHANNEL_EMAIL) -> review_pb2.ReviewItem:
    item = (await review_for(tenant, server=server, subject="planner").Submit(draft(channel=channel))).item
    decided = await review_for(tenant, server=server, roles=REVIEWER, subject="rita").Decide(
        review_pb2.DecideRequest(item_id=item.id, version=1, outcome=review_pb2.DECISION_OUTCOME_APPROVE)
    )
    return decided.item


def publish(item: review_pb2.ReviewItem, audience: review_pb2.AudienceSpec) -> review_pb2.PublishRequest:
    return review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256, audience=audience)


async def delivered(publish_dir, tenant: str, item_id: str) -> dict:
    path = publish_dir / tenant / f"{item_id}.json"

    async def written():
        return path.exists()

    await eventually(written)
    return json.loads(path.read_text())


async def test_a_segment_audience_leaves_out_and_counts_who_may_not_be_reached(
    audience_review, review_for, connect, tenant
):
    server, publish_dir, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    reachable = [c for c in CUSTOMERS if c not in ("c-00", "c-01", "c-02")]

    item = await approved(review_for, server, tenant)
    reply = await publisher.Publish(publish(item, segment()))
    audience = reply.audience
    assert (audience.segmentation, audience.segmentation_version, audience.segment_id) == ("audience", 1, "buyers")
    assert audience.size == len(reachable) == 9
    assert (audience.excluded_without_consent, audience.excluded_opted_out, audience.excluded_frequency_capped) == (
        2,
        1,
        0,
    )
    assert audience.members_sha256 == digest(reachable)
    assert audience.frequency_cap_messages == 2 and audience.frequency_cap_window.ToTimedelta() == timedelta(days=7)

    # The sink receives the members with the document, and the counts.
    document = await delivered(publish_dir, tenant, item.id)
    assert document["audience_members"] == reachable
    assert document["resolved_audience"]["size"] == 9
    assert document["resolved_audience"]["members_sha256"] == digest(reachable)
    assert document["resolved_audience"]["excluded"] == {"without_consent": 2, "opted_out": 1, "frequency_capped": 0}

    # Publishing again answers the first publication and its audience; nothing is resolved anew.
    again = await publisher.Publish(publish(item, customers(["c-05"])))
    assert again.already_published and again.audience == audience

    # An experiment on exactly that audience.
    variant = review_pb2.ExperimentVariant(label="A", publication_id=reply.publication.id)
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=[variant], audience_publication_id=reply.publication.id)
    )
    assert created.experiment.audience_size == 9
    assert created.experiment.holdout_share == pytest.approx(0.1)

    # A customer's memberships are theirs: described for an access request, erased with them.
    auditor = review_for(tenant, server=server, roles=("auditor",), subject="audrey")
    described = await auditor.DescribeSubject(review_pb2.DescribeSubjectRequest(subject_id="c-05"))
    holding = next(holding for holding in described.holdings if holding.kind == "publication-audiences")
    assert holding.count == 1 and holding.scope == reply.publication.id
    admin = review_for(tenant, server=server, roles=("admin",), subject="ada", purpose="erasure")
    erased = await admin.EraseSubject(review_pb2.EraseSubjectRequest(subject_id="c-05"))
    assert erased.erased_audience_memberships == 1 and erased.erased_experiment_arms == 1
    described = await auditor.DescribeSubject(review_pb2.DescribeSubjectRequest(subject_id="c-05"))
    assert "publication-audiences" not in [holding.kind for holding in described.holdings]


async def test_the_frequency_cap_counts_publications_per_channel(audience_review, review_for, connect, tenant):
    server, publish_dir, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    # Two e-mails to four customers: each has reached the cap (2 per 7 days).
    first = ["c-04", "c-05", "c-06", "c-07"]
    for _ in range(2):
        item = await approved(review_for, server, tenant)
        reply = await publisher.Publish(publish(item, customers(first)))
        assert reply.audience.size == 4 and reply.audience.excluded_frequency_capped == 0

    # Twice to the segment: the four are left out both times, the five others get their two e-mails.
    for _ in range(2):
        item = await approved(review_for, server, tenant)
        reply = await publisher.Publish(publish(item, segment()))
        assert reply.audience.excluded_frequency_capped == 4
        assert reply.audience.size == 5  # 12 members, 2 without consent, 1 opted out, 4 capped
        document = await delivered(publish_dir, tenant, item.id)
        assert not set(document["audience_members"]) & set(first)

    # Every member who may be reached by e-mail has had two: nobody is left, and nothing is published.
    item = await approved(review_for, server, tenant)
    error = await refused(publisher.Publish(publish(item, segment())), grpc.StatusCode.FAILED_PRECONDITION)
    assert error.reason == "EMPTY_AUDIENCE"
    assert (error.metadata["without_consent"], error.metadata["opted_out"], error.metadata["frequency_capped"]) == (
        "2",
        "1",
        "9",
    )
    unpublished = (await review_for(tenant, server=server).Get(review_pb2.GetRequest(item_id=item.id))).item
    assert unpublished.status == review_pb2.REVIEW_STATUS_APPROVED and not unpublished.HasField("publication")

    # Text messages have their own count: c-03 opted out of them, c-02 only of e-mail.
    sms = await approved(review_for, server, tenant, channel=review_pb2.CHANNEL_SMS)
    reply = await publisher.Publish(publish(sms, segment()))
    assert reply.audience.size == 9 and reply.audience.excluded_opted_out == 1
    assert "c-03" not in (await delivered(publish_dir, tenant, sms.id))["audience_members"]


async def test_bad_audiences_are_refused_and_write_nothing(audience_review, review_for, connect, tenant):
    server, _, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    item = await approved(review_for, server, tenant)

    error = await refused(publisher.Publish(publish(item, segment(segmentation="nope"))), grpc.StatusCode.NOT_FOUND)
    assert error.reason == "SEGMENTATION_NOT_FOUND"
    error = await refused(publisher.Publish(publish(item, segment(segment_id="nobody"))), grpc.StatusCode.NOT_FOUND)
    assert error.reason == "SEGMENT_NOT_FOUND"
    await refused(publisher.Publish(publish(item, segment(version=7))), grpc.StatusCode.NOT_FOUND)

    error = await refused(publisher.Publish(publish(item, customers(["c-05", "ghost", "c-06", "phantom"]))))
    assert error.reason == "UNKNOWN_CUSTOMERS"
    assert set(error.field_violations) == {
        "audience.customers.customer_ids[1]",
        "audience.customers.customer_ids[3]",
    }
    error = await refused(publisher.Publish(publish(item, customers([f"c-{n}" for n in range(100_001)]))))
    assert "audience.customers.customer_ids" in error.field_violations
    error = await refused(publisher.Publish(publish(item, customers(["c-05", ""]))))
    assert "audience.customers.customer_ids[1]" in error.field_violations
    error = await refused(publisher.Publish(publish(item, review_pb2.AudienceSpec())))
    assert "audience.customers.customer_ids" in error.field_violations
    error = await refused(publisher.Publish(publish(item, segment(segmentation=""))))
    assert "audience.segment.segmentation" in error.field_violations

    # Only customers without consent: the publication says so and nothing is delivered.
    error = await refused(
        publisher.Publish(publish(item, customers(["c-00", "c-01"]))), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert error.reason == "EMPTY_AUDIENCE" and error.metadata["without_consent"] == "2"

    # None of it left a publication: the item publishes as the first time.
    reply = await publisher.Publish(publish(item, customers(["c-05", "c-06"])))
    assert not reply.already_published and reply.audience.size == 2
    assert reply.audience.members_sha256 == digest(["c-05", "c-06"])


async def test_the_cli_publishes_to_a_segment_or_a_file_of_customers(
    audience_review, review_for, connect, issuer, tenant, tmp_path
):
    server, _, segmentation = audience_review
    await customer_base(connect, segmentation, tenant)
    token = issuer.mint(subject="pat", tenant=tenant, roles=list(PUBLISHER))
    connection = ["--target", f"127.0.0.1:{server.port}", "--token", token]

    item = await approved(review_for, server, tenant)
    code, out, err = await invoke_review("publish", item.id, "--segment", "audience@1/buyers", *connection)
    assert code == 0, err
    assert "audience: 9 members" in out and "2 without consent, 1 opted out, 0 at the frequency cap" in out
    assert digest([c for c in CUSTOMERS if c not in ("c-00", "c-01", "c-02")]) in out

    listed = tmp_path / "customers.txt"
    listed.write_text("c-05\nc-06\n\nc-00\n")
    item = await approved(review_for, server, tenant)
    code, out, err = await invoke_review("publish", item.id, "--customers", str(listed), *connection)
    assert code == 0 and "audience: 2 members" in out and "1 without consent" in out
    code, _, err = await invoke_review("publish", item.id, "--segment", "audience-buyers", *connection)
    assert code != 0 and "--segment" in err


async def test_ids_with_characters_copy_escapes_reach_the_sink_unchanged(audience_review, review_for, connect, tenant):
    """Ids travel through COPY twice (out of segmentation, into the audience); its text format escapes backslashes,
    tabs and line breaks, which must come back as they were, in the digest too."""
    server, publish_dir, segmentation = audience_review
    odd = ["back\\slash", "tab\there", "line\nbreak", "carriage\rreturn", "plain", "é-accent", "\\N"]
    stub = segmentation_pb2_grpc.SegmentationServiceStub(connect(segmentation, tenant))
    await stub.IngestCustomers(
        seg_pb.IngestCustomersRequest(customers=[seg_pb.Customer(id=customer, policy=CAMPAIGN) for customer in odd])
    )
    publisher = review_for(tenant, server=server, roles=PUBLISHER, subject="pat")
    item = await approved(review_for, server, tenant)
    reply = await publisher.Publish(publish(item, customers(odd)))
    assert reply.audience.size == len(odd)
    assert reply.audience.members_sha256 == digest(odd)
    assert (await delivered(publish_dir, tenant, item.id))["audience_members"] == sorted(odd)
    variant = review_pb2.ExperimentVariant(label="A", publication_id=reply.publication.id)
    created = await publisher.CreateExperiment(
        review_pb2.CreateExperimentRequest(variants=[variant], audience_publication_id=reply.publication.id)
    )
    arms = await publisher.AssignVariants(
        review_pb2.AssignVariantsRequest(experiment_id=created.experiment.id, customer_ids=odd)
    )
    assert created.experiment.audience_size == len(odd) and arms.added == 0


async def test_an_audience_needs_segmentation_configured(review_for, tenant):
    item = await approved(review_for, None, tenant)
    publisher = review_for(tenant, roles=PUBLISHER, subject="pat")
    error = await refused(publisher.Publish(publish(item, segment())), grpc.StatusCode.UNAVAILABLE)
    assert error.reason == "SEGMENTATION_NOT_CONFIGURED"
    # Without an audience the item publishes as before: the item's audience as a reference, no member list.
    reply = await publisher.Publish(review_pb2.PublishRequest(item_id=item.id, content_sha256=item.approved_sha256))
    assert not reply.HasField("audience")
