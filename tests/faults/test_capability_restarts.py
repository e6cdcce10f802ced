"""Each capability killed in the middle of a run and started again on the same address: the run completes, the
capability did each call's work once (the one call whose reply was lost with the connection excepted: sent again
under its idempotency key, and deduplicated where it has an effect), the conductor checkpointed each hop once, and
both ledgers verify.

The kill comes at the worst moment: the capability has answered a call of the fan-out and the reply is lost with
the connection (see CuttingProxy). Embedding, classification, generation and segmentation run in this process
(the first three sharing the session's models) and are stopped with no grace; review, whose outbox and sinks
work in the background, is a process killed with SIGKILL.
"""

import asyncio
import collections
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import grpc
from google.protobuf import json_format

from matcha.classification.app import build_classification_service
from matcha.common.v1 import common_pb2
from matcha.conductor.app import build_conductor_service
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.app import build_generation_service
from matcha.generation.settings import BackendSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.settings import SegmentationSettings
from matcha.segmentation.v1 import segmentation_pb2 as seg_pb
from matcha.segmentation.v1 import segmentation_pb2_grpc
from tests.conductor.support import start, wait_for_run
from tests.faults.conftest import CuttingProxy, RestartableServer, assert_ledgers_verify
from tests.review.conftest import eventually
from tests.support import free_port

# 18 to 37 s of retries in all (each pause is drawn between half its bound and its bound), for a capability
# restarting on a loaded machine: calls fail at once while it is down, each using an attempt.
RETRY = "{max_attempts: 10, initial_backoff: 0.2s, max_backoff: 8s}"
DOWN_SECONDS = 1.0


async def run_through_a_kill(
    *,
    stub,
    proxy: CuttingProxy,
    capability,
    method: str,
    cut_after: int,
    plan: str,
    plan_name: str,
    before_kill=None,
    **inputs,
) -> conductor_pb2.Run:
    """Starts the run, kills the capability (and every connection to it) once it has answered the call after
    `cut_after` calls of `method` and before that reply is delivered, starts it again after a pause, and waits
    for the run's end. `before_kill`, when given, is awaited between the answer and the kill."""
    await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=plan))
    proxy.cut_after(method, cut_after)
    run = await start(stub, plan_name, **inputs)
    await asyncio.wait_for(proxy.cut_reached.wait(), 60)
    if before_kill is not None:
        await before_kill()
    await capability.kill()
    await proxy.stop()
    await asyncio.sleep(DOWN_SECONDS)
    await capability.start()
    await proxy.start()
    finished = await wait_for_run(stub, run.id, within_seconds=60)
    assert finished.state == conductor_pb2.RUN_STATE_SUCCEEDED, finished.error
    return finished


async def assert_each_hop_once(auditor, proxy: CuttingProxy, run_id: str, method: str, items: int, step: str) -> None:
    """The capability answered each item's call once, the call whose reply was lost twice (same key); the
    conductor's ledger has one OK row per item."""
    answered = proxy.answered_keys(method, run_id)
    assert set(answered) == {f"{run_id}/{step}/{index}" for index in range(items)}, answered
    assert sorted(answered.values()) == [1] * (items - 1) + [2], answered
    ledger = (await auditor.ListAudit(conductor_pb2.ListAuditRequest(run_id=run_id, page_size=1000))).records
    succeeded = collections.Counter(
        row.item_index for row in ledger if row.step_id == step and row.status_code == grpc.StatusCode.OK.value[0]
    )
    assert succeeded == collections.Counter(range(items)), succeeded


def conductor_for(conductor_settings, database: str, service: str, proxy: CuttingProxy):
    return conductor_settings(
        database_url=database, conductor_endpoints={service: f"127.0.0.1:{proxy.port}"}, conductor_poll_seconds=0.3
    )


# -- embedding ---------------------------------------------------------------------------------------------------

EMBEDDING = "matcha.embedding.v1.EmbeddingService"
DOCUMENTS = [f"review {index}: the parcel came on time and the shoes fit well" for index in range(8)]
UPSERT_PLAN = f"""
name: fault-upsert
inputs:
  - {{name: collection, type: string, required: true}}
  - {{name: texts, type: list, required: true}}
steps:
  - id: upsert
    call: {EMBEDDING}/Upsert
    for_each: {{items: "inputs.texts", concurrency: 1}}
    request: {{collection: "${{inputs.collection}}", documents: [{{id: "doc-${{string(index)}}", text: "${{item}}"}}]}}
    output: "response.inserted"
    retry: {RETRY}
outputs:
  inserted: "steps.upsert.output"
"""


async def test_the_embedding_service_killed_mid_run(
    embedding_settings, conductor_settings, serve, connect, verifier, local_encoder, isolated_database, tenant
):
    port = free_port()
    settings = embedding_settings(database_url=isolated_database, listen_address=f"127.0.0.1:{port}")
    capability = RestartableServer(lambda: build_embedding_service(settings, encoder=local_encoder), settings, verifier)
    proxy = CuttingProxy(f"127.0.0.1:{port}", free_port())
    await capability.start()
    await proxy.start()
    try:
        orchestration = conductor_for(conductor_settings, isolated_database, EMBEDDING, proxy)
        async with serve(build_conductor_service(orchestration), orchestration) as conductor:
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
            embedding = embedding_pb2_grpc.EmbeddingServiceStub(connect(SimpleNamespace(port=port), tenant))
            await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name="reviews"))
            run = await run_through_a_kill(
                stub=stub,
                proxy=proxy,
                capability=capability,
                method="Upsert",
                cut_after=3,
                plan=UPSERT_PLAN,
                plan_name="fault-upsert",
                collection="reviews",
                texts=DOCUMENTS,
            )
            # The lost reply's document was stored by the first call: the second finds it unchanged.
            inserted = json_format.MessageToDict(run.outputs)["inserted"]
            assert sorted(inserted) == [0] + [1] * (len(DOCUMENTS) - 1), inserted
            stored = await embedding.ListDocuments(embedding_pb2.ListDocumentsRequest(collection="reviews"))
            assert sorted(document.id for document in stored.documents) == sorted(
                f"doc-{index}" for index in range(len(DOCUMENTS))
            )
            auditor = connect(conductor, tenant, roles=("auditor",))
            await assert_each_hop_once(
                conductor_pb2_grpc.ConductorServiceStub(auditor), proxy, run.id, "Upsert", len(DOCUMENTS), "upsert"
            )
            await assert_ledgers_verify(auditor)
    finally:
        await proxy.stop()
        await capability.kill()


# -- classification ----------------------------------------------------------------------------------------------

CLASSIFICATION = "matcha.classification.v1.ClassificationService"
CLASSIFY_PLAN = f"""
name: fault-classify
inputs:
  - {{name: texts, type: list, required: true}}
steps:
  - id: sentiment
    call: {CLASSIFICATION}/Classify
    for_each: {{items: "inputs.texts", concurrency: 1}}
    request: {{texts: ["${{item}}"], tasks: [{{sentiment: {{}}}}], language: en}}
    output: "response.results[0].sentiment.label"
    retry: {RETRY}
outputs:
  labels: "steps.sentiment.output"
"""
OPINIONS = [
    "I love these shoes, the best purchase of the year",
    "The parcel arrived broken and nobody answered my emails",
    "Great fit, fast delivery, I will order again",
    "Terrible quality, the sole came off after a week",
    "Very comfortable and the colour is lovely",
    "Awful service, I want my money back",
]


async def test_the_classification_service_killed_mid_run(
    classification_settings, conductor_settings, serve, connect, verifier, local_encoder, isolated_database, tenant
):
    port = free_port()
    settings = classification_settings(database_url=isolated_database, listen_address=f"127.0.0.1:{port}")
    capability = RestartableServer(
        lambda: build_classification_service(settings, encoder=local_encoder), settings, verifier
    )
    proxy = CuttingProxy(f"127.0.0.1:{port}", free_port())
    await capability.start()
    await proxy.start()
    try:
        orchestration = conductor_for(conductor_settings, isolated_database, CLASSIFICATION, proxy)
        async with serve(build_conductor_service(orchestration), orchestration) as conductor:
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
            run = await run_through_a_kill(
                stub=stub,
                proxy=proxy,
                capability=capability,
                method="Classify",
                cut_after=2,
                plan=CLASSIFY_PLAN,
                plan_name="fault-classify",
                texts=OPINIONS,
            )
            labels = json_format.MessageToDict(run.outputs)["labels"]
            assert labels[0::2] == ["SENTIMENT_POSITIVE"] * 3 and labels[1::2] == ["SENTIMENT_NEGATIVE"] * 3, labels
            auditor = connect(conductor, tenant, roles=("auditor",))
            await assert_each_hop_once(
                conductor_pb2_grpc.ConductorServiceStub(auditor), proxy, run.id, "Classify", len(OPINIONS), "sentiment"
            )
            await assert_ledgers_verify(auditor)
    finally:
        await proxy.stop()
        await capability.kill()


# -- generation --------------------------------------------------------------------------------------------------

GENERATION = "matcha.generation.v1.GenerationService"
GENERATE_PLAN = f"""
name: fault-generate
inputs:
  - {{name: briefs, type: list, required: true}}
steps:
  - id: draft
    call: {GENERATION}/Generate
    for_each: {{items: "inputs.briefs", concurrency: 1}}
    request: {{prompt: "${{item}}", parameters: {{max_new_tokens: 12, temperature: 0.0, seed: 7}}}}
    output: "response.text"
    timeout: 120s
    retry: {RETRY}
outputs:
  drafts: "steps.draft.output"
"""
BRIEFS = ["Write one line about our new walking shoes.", "Write one line about free delivery.", "Say thank you."]


async def test_the_generation_service_killed_mid_run(
    generation_settings,
    conductor_settings,
    serve,
    connect,
    verifier,
    local_encoder,
    local_model,
    isolated_database,
    tenant,
):
    port = free_port()
    settings = generation_settings(
        [BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")],
        database_url=isolated_database,
        listen_address=f"127.0.0.1:{port}",
    )
    capability = RestartableServer(
        lambda: build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model}),
        settings,
        verifier,
    )
    proxy = CuttingProxy(f"127.0.0.1:{port}", free_port())
    await capability.start()
    await proxy.start()
    try:
        orchestration = conductor_for(conductor_settings, isolated_database, GENERATION, proxy)
        async with serve(build_conductor_service(orchestration), orchestration) as conductor:
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
            run = await run_through_a_kill(
                stub=stub,
                proxy=proxy,
                capability=capability,
                method="Generate",
                cut_after=1,
                plan=GENERATE_PLAN,
                plan_name="fault-generate",
                briefs=BRIEFS,
            )
            drafts = json_format.MessageToDict(run.outputs)["drafts"]
            assert len(drafts) == len(BRIEFS) and all(text.strip() for text in drafts), drafts
            auditor = connect(conductor, tenant, roles=("auditor",))
            await assert_each_hop_once(
                conductor_pb2_grpc.ConductorServiceStub(auditor), proxy, run.id, "Generate", len(BRIEFS), "draft"
            )
            await assert_ledgers_verify(auditor)
    finally:
        await proxy.stop()
        await capability.kill()


# -- segmentation ------------------------------------------------------------------------------------------------

SEGMENTATION = "matcha.segmentation.v1.SegmentationService"
BUILD_PLAN = f"""
name: fault-build
inputs:
  - {{name: names, type: list, required: true}}
steps:
  - id: build
    call: {SEGMENTATION}/BuildSegmentation
    for_each: {{items: "inputs.names", concurrency: 1}}
    request: {{name: "${{item}}", kmeans: {{k: 2}}, seed: 1}}
    output: "response.segmentation.version"
    retry: {RETRY}
outputs:
  versions: "steps.build.output"
"""
SEGMENTATIONS = [f"fault-{index}" for index in range(5)]


def customer_base() -> list[seg_pb.Transaction]:
    """Ten frequent big spenders and ten occasional small ones."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    transactions = []
    for number in range(20):
        frequent = number < 10
        for purchase in range(6 if frequent else 1):
            message = seg_pb.Transaction(
                id=f"t-{number}-{purchase}", customer_id=f"c-{number:02d}", amount=40.0 if frequent else 8.0
            )
            message.time.FromDatetime(start + timedelta(days=9 * purchase + number))
            transactions.append(message)
    return transactions


async def test_the_segmentation_service_killed_mid_run(
    conductor_settings, serve, connect, verifier, isolated_database, state_dir, tenant
):
    port = free_port()
    settings = SegmentationSettings(
        database_url=isolated_database, state_dir=state_dir, listen_address=f"127.0.0.1:{port}"
    )
    capability = RestartableServer(lambda: build_segmentation_service(settings), settings, verifier)
    proxy = CuttingProxy(f"127.0.0.1:{port}", free_port())
    await capability.start()
    await proxy.start()
    try:
        segmentation = segmentation_pb2_grpc.SegmentationServiceStub(connect(SimpleNamespace(port=port), tenant))
        policy = common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"])
        await segmentation.IngestTransactions(
            seg_pb.IngestTransactionsRequest(transactions=customer_base(), default_policy=policy)
        )
        orchestration = conductor_for(conductor_settings, isolated_database, SEGMENTATION, proxy)
        async with serve(build_conductor_service(orchestration), orchestration) as conductor:
            stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant))
            run = await run_through_a_kill(
                stub=stub,
                proxy=proxy,
                capability=capability,
                method="BuildSegmentation",
                cut_after=2,
                plan=BUILD_PLAN,
                plan_name="fault-build",
                names=SEGMENTATIONS,
            )
            # The build whose reply was lost is not built twice: every name has its one version.
            assert json_format.MessageToDict(run.outputs)["versions"] == [1] * len(SEGMENTATIONS)
            for name in SEGMENTATIONS:
                versions = await segmentation.ListSegmentations(seg_pb.ListSegmentationsRequest(name=name))
                assert [built.version for built in versions.segmentations] == [1], name
            auditor = connect(conductor, tenant, roles=("auditor",))
            await assert_each_hop_once(
                conductor_pb2_grpc.ConductorServiceStub(auditor),
                proxy,
                run.id,
                "BuildSegmentation",
                len(SEGMENTATIONS),
                "build",
            )
            await assert_ledgers_verify(auditor)
    finally:
        await proxy.stop()
        await capability.kill()


# -- review ------------------------------------------------------------------------------------------------------

REVIEW = "matcha.review.v1.ReviewService"
PUBLISH_PLAN = f"""
name: fault-publish
inputs:
  - {{name: approved, type: list, required: true}}
steps:
  - id: publish
    call: {REVIEW}/Publish
    for_each: {{items: "inputs.approved", concurrency: 1}}
    request: {{item_id: "${{item.id}}", content_sha256: "${{item.sha256}}"}}
    output: "response.publication.id"
    retry: {RETRY}
outputs:
  publications: "steps.publish.output"
"""
DRAFTS = 5


async def test_the_review_process_killed_mid_run_publishes_each_item_once(
    conductor_settings, serve, connect, service_processes, process_environment, isolated_database, tmp_path, tenant
):
    port = free_port()
    published = tmp_path / "published"
    capability = service_processes(
        "matcha.review",
        {
            **process_environment,
            "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "MATCHA_REVIEW_PUBLISH_DIR": str(published),
            "MATCHA_REVIEW_DELIVERY_INITIAL_BACKOFF_SECONDS": "0.05",
            "MATCHA_REVIEW_DELIVERY_MAX_BACKOFF_SECONDS": "0.2",
            "MATCHA_REVIEW_DELIVERY_POLL_SECONDS": "0.2",
        },
        f"127.0.0.1:{port}",
    )
    proxy = CuttingProxy(f"127.0.0.1:{port}", free_port())
    await capability.start()
    await proxy.start()
    try:
        address = SimpleNamespace(port=port)
        writer = review_pb2_grpc.ReviewServiceStub(connect(address, tenant, subject="wendy"))
        rita = review_pb2_grpc.ReviewServiceStub(connect(address, tenant, roles=("reviewer",), subject="rita"))
        approved = []
        for number in range(DRAFTS):
            item = (
                await writer.Submit(
                    review_pb2.SubmitRequest(
                        title=f"Spring {number}",
                        content=f"Our walking shoes, edition {number}.\n",
                        channel=review_pb2.CHANNEL_EMAIL,
                        target="newsletter-weekly",
                    )
                )
            ).item
            decided = (
                await rita.Decide(
                    review_pb2.DecideRequest(
                        item_id=item.id, version=item.version, outcome=review_pb2.DECISION_OUTCOME_APPROVE
                    )
                )
            ).item
            approved.append({"id": decided.id, "sha256": decided.approved_sha256})

        async def written(count: int) -> list[dict] | None:
            documents = [json.loads(path.read_text()) for path in (published / tenant).glob("*.json")]
            return documents if len(documents) >= count else None

        async def cut_publication_written() -> None:
            # A file-sink write in progress when the process dies is retried by the next process only when its
            # 60 s delivery lease expires: too long for this suite, so the kill comes after the write.
            await eventually(lambda: written(3), within_seconds=30)

        orchestration = conductor_for(conductor_settings, isolated_database, REVIEW, proxy)
        async with serve(build_conductor_service(orchestration), orchestration) as conductor:
            publisher = connect(conductor, tenant, roles=("analyst", "author", "operator", "publisher"), subject="pat")
            run = await run_through_a_kill(
                before_kill=cut_publication_written,
                stub=conductor_pb2_grpc.ConductorServiceStub(publisher),
                proxy=proxy,
                capability=capability,
                method="Publish",
                cut_after=2,
                plan=PUBLISH_PLAN,
                plan_name="fault-publish",
                approved=approved,
            )
            publications = json_format.MessageToDict(run.outputs)["publications"]
            assert len(set(publications)) == DRAFTS, publications
            documents = await eventually(lambda: written(DRAFTS), within_seconds=30)
            assert sorted(document["publication_id"] for document in documents) == sorted(publications)
            for entry in approved:
                history = (await rita.Get(review_pb2.GetRequest(item_id=entry["id"]))).history
                published_events = [event for event in history if event.type == review_pb2.REVIEW_EVENT_TYPE_PUBLISHED]
                assert len(published_events) == 1, history
            auditor = connect(conductor, tenant, roles=("auditor",))
            await assert_each_hop_once(
                conductor_pb2_grpc.ConductorServiceStub(auditor), proxy, run.id, "Publish", DRAFTS, "publish"
            )
            await assert_ledgers_verify(auditor)
    finally:
        await proxy.stop()
        await capability.kill()
