"""Erasure reaches every store: after ConductorService/EraseSubject nothing kept about the subject remains in any
capability service (review drafts with their history, outbox rows and published files; classifier examples and
the weights fitted on them; voice exemplars and the features learned from them; segmentation's customers and the
idempotency replies of the calls that ingested them), while another subject's data, and the same subject id in
another tenant, stay whole. Only an admin erases."""

import asyncio

import asyncpg
import grpc

from matcha.classification.v1 import classification_pb2
from matcha.conductor.v1 import conductor_pb2
from matcha.embedding.v1 import embedding_pb2
from matcha.generation.v1 import generation_pb2
from matcha.review.core import Limits, ReviewCore, SubmitInput
from matcha.review.delivery import FileSink, OutboxDispatcher, RetryPolicy
from matcha.review.servicer import encode_signal
from matcha.review.store import ReviewStore
from matcha.review.v1 import review_pb2
from matcha.runtime.database import Database, load_migrations
from matcha.runtime.governance import CallContext, DataClass, Principal
from matcha.segmentation.v1 import segmentation_pb2
from tests.security.subject_stores import (
    CAPABILITIES,
    CLASSIFICATION,
    CONDUCTOR,
    EMBEDDING,
    GENERATION,
    REVIEW,
    SEGMENTATION,
    seed_subject,
)
from tests.support import refused

ERASE_REQUESTS = {
    EMBEDDING: embedding_pb2.EraseSubjectRequest,
    CLASSIFICATION: classification_pb2.EraseSubjectRequest,
    GENERATION: generation_pb2.EraseSubjectRequest,
    SEGMENTATION: segmentation_pb2.EraseSubjectRequest,
    REVIEW: review_pb2.EraseSubjectRequest,
}
# Every role but admin, declaring what an erasure declares.
NOT_ADMIN = {
    "roles": ("analyst", "author", "operator", "reviewer", "publisher", "auditor"),
    "purpose": "erasure",
    "data_class": DataClass.PERSONAL,
}
ADMIN = {"roles": ("admin",), "purpose": "erasure", "data_class": DataClass.PERSONAL}
READER = {"roles": ("analyst",), "data_class": DataClass.PERSONAL}


async def test_only_an_admin_erases_a_subject(mesh, tenant):
    seeded = await seed_subject(mesh, tenant, "c-42", "saffron")

    details = await refused(
        mesh.stub(CONDUCTOR, tenant, **NOT_ADMIN).EraseSubject(conductor_pb2.EraseSubjectRequest(subject_id="c-42")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert details.reason == "MISSING_ROLE"
    for service, request in ERASE_REQUESTS.items():
        details = await refused(
            mesh.stub(service, tenant, **NOT_ADMIN).EraseSubject(request(subject_id="c-42")),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert (details.reason, details.metadata["role"]) == ("MISSING_ROLE", "admin"), service
        # An admin naming no subject erases nothing either.
        details = await refused(mesh.stub(service, tenant, **ADMIN).EraseSubject(request()))
        assert "subject_id" in details.field_violations, service

    # Nothing was erased by the refused calls.
    item = await mesh.stub(REVIEW, tenant, **READER).Get(review_pb2.GetRequest(item_id=seeded.review_item))
    assert list(item.item.subject_ids) == ["c-42"]
    assert await asyncio.to_thread(seeded.published_file.exists)
    customer = await mesh.stub(SEGMENTATION, tenant, **READER).GetCustomer(
        segmentation_pb2.GetCustomerRequest(customer_id=seeded.customer)
    )
    assert customer.customer.policy.subject_id == "c-42"


async def test_erasure_leaves_nothing_of_the_subject_in_any_store(mesh, tenant, isolated_database):
    other_tenant = f"{tenant}-other"
    erased = await seed_subject(mesh, tenant, "c-42", "saffron")
    kept = await seed_subject(mesh, tenant, "c-7", "cobalt")
    elsewhere = await seed_subject(mesh, other_tenant, "c-42", "vermilion")
    voice = await mesh.stub(GENERATION, tenant, **READER).GetVoiceProfile(
        generation_pb2.GetVoiceProfileRequest(name=erased.voice)
    )
    assert "testimonial-42" in {exemplar.document_id for exemplar in voice.profile.exemplars}

    reply = await mesh.stub(CONDUCTOR, tenant, **ADMIN).EraseSubject(
        conductor_pb2.EraseSubjectRequest(subject_id="c-42")
    )
    assert reply.complete, [(store.store, store.status.message) for store in reply.stores]
    counts = {store.store: dict(store.erased_by_kind) for store in reply.stores}
    assert set(counts) == {*CAPABILITIES, CONDUCTOR}
    assert counts[EMBEDDING] == {"documents": 1}
    assert counts[CLASSIFICATION] == {"examples": 2, "classifier_heads": 1}
    assert counts[GENERATION]["sources"] == 1 and counts[GENERATION]["voice_profiles"] == 1
    assert counts[GENERATION]["exemplars"] >= 1
    assert counts[SEGMENTATION] == {"customers": 1, "transactions": 1, "events": 0, "idempotency_replies": 1}
    review_counts = counts[REVIEW]
    assert review_counts["items"] == review_counts["versions"] == review_counts["decisions"] == 1
    assert review_counts["publications"] == review_counts["outbox_rows"] == review_counts["files"] == 1
    assert review_counts["events"] >= 3  # submitted, decided, published

    await _review_keeps_nothing(mesh, tenant, erased, kept, isolated_database)
    await _classification_keeps_nothing_usable(mesh, tenant, erased, kept, isolated_database)
    await _generation_keeps_nothing_usable(mesh, tenant, erased, kept, isolated_database)
    await _segmentation_keeps_nothing(mesh, tenant, erased, kept, isolated_database)
    documents = await mesh.stub(EMBEDDING, tenant, **READER).ListDocuments(
        embedding_pb2.ListDocumentsRequest(collection="crm")
    )
    assert [document.id for document in documents.documents] == ["note-7"]

    # The same subject id in another tenant is another person's record: untouched.
    other = await mesh.stub(REVIEW, other_tenant, **READER).Get(review_pb2.GetRequest(item_id=elsewhere.review_item))
    assert "vermilion" in other.item.content
    assert await asyncio.to_thread(elsewhere.published_file.exists)
    other_documents = await mesh.stub(EMBEDDING, other_tenant, **READER).ListDocuments(
        embedding_pb2.ListDocumentsRequest(collection="crm")
    )
    assert [document.id for document in other_documents.documents] == ["note-42"]
    other_classifier = await mesh.stub(CLASSIFICATION, other_tenant, **READER).GetClassifier(
        classification_pb2.GetClassifierRequest(name=elsewhere.classifier)
    )
    assert not other_classifier.classifier.HasField("withdraw_time")

    again = await mesh.stub(CONDUCTOR, tenant, **ADMIN).EraseSubject(
        conductor_pb2.EraseSubjectRequest(subject_id="c-42")
    )
    assert again.complete and all(store.erased_records == 0 for store in again.stores)


async def _review_keeps_nothing(mesh, tenant, erased, kept, database_url) -> None:
    reader = mesh.stub(REVIEW, tenant, **READER)
    await refused(reader.Get(review_pb2.GetRequest(item_id=erased.review_item)), grpc.StatusCode.NOT_FOUND)
    connection = await asyncpg.connect(database_url)
    try:
        for table in ("review_versions", "review_decisions", "review_events", "review_outbox", "review_publications"):
            left = await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE item_id = $1::uuid", erased.review_item
            )
            assert left == 0, table
            others = await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE item_id = $1::uuid", kept.review_item
            )
            assert others > 0, table
    finally:
        await connection.close()
    assert not await asyncio.to_thread(erased.published_file.exists)
    assert await asyncio.to_thread(kept.published_file.exists)
    still = await reader.Get(review_pb2.GetRequest(item_id=kept.review_item))
    assert still.item.status == review_pb2.REVIEW_STATUS_APPROVED and still.item.publication.id


async def _classification_keeps_nothing_usable(mesh, tenant, erased, kept, database_url) -> None:
    reader = mesh.stub(CLASSIFICATION, tenant, **READER)
    withdrawn = await reader.GetClassifier(
        classification_pb2.GetClassifierRequest(name=erased.classifier, include_example_ids=True)
    )
    assert withdrawn.classifier.HasField("withdraw_time")
    ids = set(withdrawn.classifier.lineage.example_ids)
    assert ids and not ids & {"c-42-1", "c-42-2"}
    details = await refused(
        reader.Classify(
            classification_pb2.ClassifyRequest(
                texts=["Where is my order?"],
                tasks=[
                    classification_pb2.ClassificationTask(
                        custom=classification_pb2.CustomTask(classifier=erased.classifier)
                    )
                ],
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details.reason == "CLASSIFIER_WITHDRAWN"
    usable = await reader.Classify(
        classification_pb2.ClassifyRequest(
            texts=["Where is my order?"],
            tasks=[
                classification_pb2.ClassificationTask(custom=classification_pb2.CustomTask(classifier=kept.classifier))
            ],
        )
    )
    assert usable.results[0].custom[0].label in ("complaint", "praise")
    connection = await asyncpg.connect(database_url)
    try:
        # The weights fitted on the subject's texts are gone, not only hidden.
        assert await connection.fetchval(
            "SELECT head IS NULL FROM classification_classifiers WHERE tenant = $1 AND name = $2",
            tenant,
            erased.classifier,
        )
        subjects = await connection.fetch(
            "SELECT subject_id, count(*) FROM classification_example_subjects WHERE tenant = $1 GROUP BY subject_id",
            tenant,
        )
        assert {row["subject_id"]: row["count"] for row in subjects} == {"c-7": 2}
    finally:
        await connection.close()


async def _generation_keeps_nothing_usable(mesh, tenant, erased, kept, database_url) -> None:
    reader = mesh.stub(GENERATION, tenant, **READER)
    voice = (await reader.GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name=erased.voice))).profile
    assert voice.HasField("withdraw_time")
    assert "testimonial-42" not in {exemplar.document_id for exemplar in voice.exemplars}
    assert not voice.signature_terms and not voice.HasField("register")
    assert all(erased.marker not in exemplar.text for exemplar in voice.exemplars)
    details = await refused(
        reader.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice=erased.voice, text="Our advisers answer you.")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details.reason == "VOICE_WITHDRAWN"
    kept_voice = (await reader.GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name=kept.voice))).profile
    assert "testimonial-7" in {exemplar.document_id for exemplar in kept_voice.exemplars}
    scored = await reader.ScoreVoice(
        generation_pb2.ScoreVoiceRequest(voice=kept.voice, text="Our advisers answer you.")
    )
    assert 0 <= scored.score <= 100
    connection = await asyncpg.connect(database_url)
    try:
        learned = await connection.fetchrow(
            "SELECT features IS NULL AS features_gone, centroid IS NULL AS centroid_gone "
            "FROM generation_voice_profiles WHERE tenant = $1 AND name = $2",
            tenant,
            erased.voice,
        )
        assert learned["features_gone"] and learned["centroid_gone"]
        passages = await connection.fetchval(
            "SELECT count(*) FROM generation_voice_exemplars WHERE tenant = $1 AND text LIKE '%' || $2 || '%'",
            tenant,
            erased.marker,
        )
        assert passages == 0
    finally:
        await connection.close()


async def _segmentation_keeps_nothing(mesh, tenant, erased, kept, database_url) -> None:
    reader = mesh.stub(SEGMENTATION, tenant, **READER)
    await refused(
        reader.GetCustomer(segmentation_pb2.GetCustomerRequest(customer_id=erased.customer)), grpc.StatusCode.NOT_FOUND
    )
    still = await reader.GetCustomer(segmentation_pb2.GetCustomerRequest(customer_id=kept.customer))
    assert still.customer.policy.subject_id == "c-7"
    connection = await asyncpg.connect(database_url)
    try:
        replies = await connection.fetch(
            "SELECT key, reply::text AS reply FROM segmentation_idempotency WHERE tenant = $1", tenant
        )
    finally:
        await connection.close()
    assert [row["key"] for row in replies] == [kept.ingest_key]


async def test_a_publication_delivered_while_its_item_is_erased_leaves_no_file(isolated_database, tenant, tmp_path):
    """The dispatcher took the delivery before the erasure and writes the file after it: the file is taken back."""
    database = Database(isolated_database)
    await database.connect(load_migrations("review", "matcha.review.migrations"))
    store = ReviewStore(database)
    files = FileSink(tmp_path)
    core = ReviewCore(
        store,
        Limits(),
        sla_hours={priority: 24.0 for priority in (1, 2, 3, 4)},
        sinks=["files"],
        encode_signal=encode_signal,
        four_eyes_off_tenants=frozenset({tenant}),
        published_files=files,
    )

    def as_(*roles: str) -> CallContext:
        return CallContext(Principal("someone", tenant, frozenset(roles)), "campaign", DataClass.PERSONAL)

    try:
        submitted, _ = await core.submit(
            as_("author"),
            SubmitInput(title="", content="Dear saffron, hello.", format="", channel="EMAIL", subject_ids=["c-42"]),
        )
        item = submitted.item
        decided, _ = await core.decide(as_("reviewer"), item.id, version=1, outcome="APPROVE", comment="", edit=None)
        await core.publish(as_("publisher"), item.id, decided.item.approved_sha256, ["files"])

        taken, release = asyncio.Event(), asyncio.Event()

        async def slow_files(entry) -> None:
            taken.set()
            await release.wait()
            await files.deliver(entry)

        dispatcher = OutboxDispatcher(
            store, None, {"files": slow_files}, RetryPolicy(), poll_seconds=0.1, retractors={"files": files.retract}
        )
        delivering = asyncio.create_task(dispatcher.deliver_due())
        await asyncio.wait_for(taken.wait(), 10)
        erased = await core.erase_subject(as_("admin"), "c-42")
        assert erased.items == 1 and erased.files == 0  # nothing written yet
        release.set()
        assert await delivering == 1
        assert not await asyncio.to_thread(lambda: any(tmp_path.rglob("*.json")))
    finally:
        await database.close()
