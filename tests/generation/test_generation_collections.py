"""LearnVoice from an embedding collection: a real in-process embedding service, read with the caller's rights."""

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from matcha.cli.generate import voice
from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.generation.app import build_generation_service
from matcha.generation.settings import BackendSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from matcha.runtime.server import MatchaServer
from tests.generation.brand_pages import BANK_PAGES, CAFE_PAGES
from tests.generation.test_generation_cli import _run
from tests.support import struct


@pytest.fixture(scope="module")
async def reading_server(
    generation_settings, serve, local_encoder, local_model, embedding_server
) -> AsyncIterator[MatchaServer]:
    """A generation service wired to the session's embedding service, as `matcha up` wires them."""
    settings = generation_settings(
        [BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")],
        generation_embedding_address=f"127.0.0.1:{embedding_server.port}",
    )
    definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model})
    async with serve(definition, settings) as server:
        yield server


@pytest.fixture
def voices_for(reading_server, connect):
    def make(tenant, **kwargs):
        return generation_pb2_grpc.GenerationServiceStub(connect(reading_server, tenant, **kwargs))

    return make


@pytest.fixture
def embedding_for(embedding_server, connect):
    def make(tenant, **kwargs):
        return embedding_pb2_grpc.EmbeddingServiceStub(connect(embedding_server, tenant, **kwargs))

    return make


async def _brand_collection(embedding, name="brand-pages"):
    """The coffee roaster's pages and the bank's, told apart by a metadata field."""
    await embedding.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name))
    documents = [
        embedding_pb2.Document(id=f"cafe-{key}", text=text, metadata=struct({"brand": "grain-sauvage"}))
        for key, text in CAFE_PAGES.items()
    ] + [
        embedding_pb2.Document(id=f"bank-{key}", text=text, metadata=struct({"brand": "aldwych"}))
        for key, text in BANK_PAGES.items()
    ]
    await embedding.Upsert(embedding_pb2.UpsertRequest(collection=name, documents=documents))


def _learn(collection="brand-pages", filter_=None, **kwargs) -> generation_pb2.LearnVoiceRequest:
    source = generation_pb2.CollectionSource(collection=collection, **kwargs)
    if filter_ is not None:
        source.filter.CopyFrom(struct(filter_))
    return generation_pb2.LearnVoiceRequest(name="grain-sauvage", collection=source)


async def test_learns_the_same_voice_from_a_filtered_collection_as_from_inline_pages(voices_for, embedding_for, tenant):
    await _brand_collection(embedding_for(tenant))
    voices = voices_for(tenant)
    learned = (await voices.LearnVoice(_learn(filter_={"brand": "grain-sauvage"}))).profile
    assert learned.document_count == len(CAFE_PAGES)
    assert learned.languages[0] == "fr"
    assert learned.register.address == generation_pb2.ADDRESS_FORM_INFORMAL
    assert {exemplar.document_id for exemplar in learned.exemplars} <= {f"cafe-{key}" for key in CAFE_PAGES}
    assert learned.source_collection.collection == "brand-pages"
    assert dict(learned.source_collection.filter) == {"brand": "grain-sauvage"}
    assert learned.source_collection.limit == 2000

    inline = generation_pb2.LearnVoiceRequest(
        name="inline",
        documents=[generation_pb2.SourceDocument(id=f"cafe-{key}", text=text) for key, text in CAFE_PAGES.items()],
    )
    same = (await voices.LearnVoice(inline)).profile
    assert same.corpus_sha256 == learned.corpus_sha256  # the same texts in the same (id) order
    assert not same.HasField("source_collection")

    stored = (await voices.GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name="grain-sauvage"))).profile
    assert stored.source_collection == learned.source_collection
    listed = (await voices.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest())).profiles
    assert [profile.source_collection.collection for profile in listed] == ["brand-pages", ""]


async def test_reads_only_what_the_caller_may_see(voices_for, embedding_for, tenant):
    writer = embedding_for(tenant, data_class=DataClass.PERSONAL, purpose="campaign")
    await writer.CreateCollection(embedding_pb2.CreateCollectionRequest(name="pages"))

    def page(key, text, data_class, purposes):
        policy = common_pb2.RecordPolicy(data_class=data_class, consented_purposes=purposes)
        return embedding_pb2.Document(id=key, text=text, policy=policy)

    await writer.Upsert(
        embedding_pb2.UpsertRequest(
            collection="pages",
            documents=[
                page(key, text, common_pb2.DATA_CLASS_INTERNAL, ["campaign"]) for key, text in CAFE_PAGES.items()
            ]
            + [page("customer-letter", BANK_PAGES["about"], common_pb2.DATA_CLASS_PERSONAL, ["campaign"])],
        )
    )
    # Declared INTERNAL: the personal letter stays in the embedding service.
    internal = (await voices_for(tenant).LearnVoice(_learn("pages"))).profile
    assert internal.document_count == len(CAFE_PAGES)
    personal = (await voices_for(tenant, data_class=DataClass.PERSONAL).LearnVoice(_learn("pages"))).profile
    assert personal.document_count == len(CAFE_PAGES) + 1

    # Another purpose sees none of them: nothing to learn from.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await voices_for(tenant, purpose="pricing").LearnVoice(_learn("pages"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pricing" in error_details(refused.value).field_violations["collection"]

    # Another tenant's collection does not exist for the caller.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await voices_for(f"{tenant}-other").LearnVoice(_learn("pages"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(refused.value).reason == "COLLECTION_NOT_FOUND"


async def test_bad_sources_are_refused_before_anything_is_stored(voices_for, embedding_for, tenant):
    await _brand_collection(embedding_for(tenant))
    voices = voices_for(tenant)

    async def violations(request) -> dict[str, str]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await voices.LearnVoice(request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return error_details(refused.value).field_violations

    assert set(await violations(_learn(limit=10_001))) == {"collection.limit"}
    assert set(await violations(_learn("Not A Name"))) == {"collection.collection"}
    assert set(await violations(_learn(filter_={"brand": {"$like": "grain%"}}))) == {"collection.filter.brand.$like"}
    both = _learn()
    both.documents.add(id="a", text="Une page.")
    assert set(await violations(both)) == {"documents"}

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await voices.LearnVoice(_learn(limit=3))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(refused.value)
    assert details.reason == "COLLECTION_TOO_LARGE" and details.metadata["limit"] == "3"

    listing = await voices.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest())
    assert list(listing.profiles) == []


async def test_an_unreachable_embedding_service_is_unavailable(
    generation_settings, serve, local_encoder, local_model, connect, tenant
):
    settings = generation_settings(
        [BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")],
        generation_embedding_address="127.0.0.1:9",
    )
    definition = build_generation_service(settings, encoder=local_encoder, shared_backends={"local": local_model})
    async with serve(definition, settings) as server:
        voices = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await voices.LearnVoice(_learn())
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    details = error_details(refused.value)
    assert details.reason == "EMBEDDING_UNAVAILABLE" and details.retry_after_seconds is not None


async def test_the_read_is_a_hop_of_the_callers_trace(
    generation_settings, serve, local_encoder, local_model, embedding_server, embedding_for, connect, tenant
):
    await _brand_collection(embedding_for(tenant))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = generation_settings(
        [BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")],
        generation_embedding_address=f"127.0.0.1:{embedding_server.port}",
    )
    definition = build_generation_service(
        settings, provider, encoder=local_encoder, shared_backends={"local": local_model}
    )
    async with serve(definition, settings, provider) as server:
        voices = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
        await voices.LearnVoice(_learn(filter_={"brand": "grain-sauvage"}))

    spans = exporter.get_finished_spans()
    (learn,) = [span for span in spans if span.kind == SpanKind.SERVER]
    (read,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    assert learn.name == "/matcha.generation.v1.GenerationService/LearnVoice"
    assert read.name == "/matcha.embedding.v1.EmbeddingService/ListDocuments"
    assert read.context.trace_id == learn.context.trace_id


async def test_cli_learns_a_voice_from_a_collection(reading_server, embedding_for, issuer, tenant):
    await _brand_collection(embedding_for(tenant), name="cli-pages")
    connection = ["--target", f"127.0.0.1:{reading_server.port}"]
    connection += ["--token", issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator"])]
    learn = ["learn", "--name", "from-collection", "--collection", "cli-pages"]

    learned = await _run(voice, [*learn, "--filter", '{"brand": "grain-sauvage"}', *connection])
    assert learned.exit_code == 0, learned.output
    assert f"voice from-collection v1: {len(CAFE_PAGES)} documents" in learned.output

    both = await _run(voice, [*learn, __file__, *connection])
    assert both.exit_code == 2 and "not both" in both.output
    bad_filter = await _run(voice, [*learn, "--filter", "[1]", *connection])
    assert bad_filter.exit_code == 2 and "--filter" in bad_filter.output
