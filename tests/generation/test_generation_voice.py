"""Tone of voice over real gRPC, real PostgreSQL and the real embedding model."""

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.generation.v1 import generation_pb2
from matcha.runtime.client import error_details
from tests.generation.brand_pages import BANK_PAGES, CAFE_PAGES, FORMAL_FRENCH, ON_VOICE_FRENCH


def _learn_request(name="grain-sauvage", pages=CAFE_PAGES, **kwargs):
    return generation_pb2.LearnVoiceRequest(
        name=name,
        documents=[generation_pb2.SourceDocument(id=key, text=text) for key, text in pages.items()],
        **kwargs,
    )


async def test_learn_voice_profiles_a_french_informal_brand(stub_for, tenant):
    stub = stub_for(tenant)
    reply = await stub.LearnVoice(
        _learn_request(
            description="site 2026", preferred_terms=["torréfié"], banned_terms=["bon marché"], exemplar_count=3
        )
    )
    profile = reply.profile
    assert (profile.name, profile.version) == ("grain-sauvage", 1)
    assert profile.languages[0] == "fr"
    assert profile.document_count == 4 and profile.sentence_count >= 15
    assert profile.register.address == generation_pb2.ADDRESS_FORM_INFORMAL
    assert profile.register.second_person_rate > 0.3
    assert profile.register.exclamation_rate > 0
    assert profile.sentence_length.p10 <= profile.sentence_length.p50 <= profile.sentence_length.p90
    terms = {term.term for term in profile.signature_terms}
    assert {"café", "atelier"} & terms
    assert all(a.weight >= b.weight for a, b in zip(profile.signature_terms, profile.signature_terms[1:], strict=False))
    assert len(profile.exemplars) == 3
    assert all(e.document_id in CAFE_PAGES for e in profile.exemplars)
    assert profile.exemplars[0].centrality >= profile.exemplars[-1].centrality
    assert profile.embedding_model.id == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(profile.corpus_sha256) == 64
    assert profile.create_subject == "user-1"


async def test_learn_voice_profiles_an_english_formal_brand(stub_for, tenant):
    profile = (await stub_for(tenant).LearnVoice(_learn_request("aldwych", BANK_PAGES))).profile
    assert profile.languages[0] == "en"
    assert profile.register.contraction_rate == 0
    assert profile.register.formality > 0.9
    assert profile.register.address == generation_pb2.ADDRESS_FORM_FORMAL
    assert profile.register.first_person_plural_rate > 0.2


async def test_voices_are_versioned_listed_and_scoped_to_the_tenant(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.LearnVoice(_learn_request())
    second = (await stub.LearnVoice(_learn_request(banned_terms=["promo"]))).profile
    await stub.LearnVoice(_learn_request("aldwych", BANK_PAGES))
    assert second.version == 2

    first = (await stub.GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name="grain-sauvage", version=1))).profile
    latest = (await stub.GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name="grain-sauvage"))).profile
    assert (first.version, list(first.banned_terms)) == (1, [])
    assert (latest.version, list(latest.banned_terms)) == (2, ["promo"])

    names = await stub.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest(page_size=1))
    assert [p.name for p in names.profiles] == ["aldwych"] and names.next_page_token
    rest = await stub.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest(page_token=names.next_page_token))
    assert [(p.name, p.version) for p in rest.profiles] == [("grain-sauvage", 2)] and not rest.next_page_token
    assert not rest.profiles[0].exemplars  # listings stay light
    versions = await stub.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest(name="grain-sauvage"))
    assert [p.version for p in versions.profiles] == [2, 1]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for("another-tenant").GetVoiceProfile(generation_pb2.GetVoiceProfileRequest(name="grain-sauvage"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(raised.value).reason == "VOICE_NOT_FOUND"


async def test_learn_voice_is_idempotent_on_the_idempotency_key(stub_for, tenant):
    stub = stub_for(tenant)
    metadata = (("x-matcha-idempotency-key", "run-1/learn/0"),)
    first = (await stub.LearnVoice(_learn_request(), metadata=metadata)).profile
    again = (await stub.LearnVoice(_learn_request(), metadata=metadata)).profile
    assert (first.version, again.version) == (1, 1)
    versions = await stub.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest(name="grain-sauvage"))
    assert len(versions.profiles) == 1


async def test_score_voice_tells_on_voice_from_off_voice(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.LearnVoice(_learn_request(banned_terms=["bon marché"]))
    on_voice = await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="grain-sauvage", text=ON_VOICE_FRENCH))
    off_voice = await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="grain-sauvage", text=FORMAL_FRENCH))
    assert on_voice.score > off_voice.score + 15
    assert 0 <= off_voice.score < on_voice.score <= 100
    assert on_voice.components.semantic > off_voice.components.semantic
    assert on_voice.components.register > off_voice.components.register
    assert (on_voice.voice, on_voice.version) == ("grain-sauvage", 1)
    assert on_voice.model.id == "sentence-transformers/all-MiniLM-L6-v2"

    off_codes = {flag.code for flag in off_voice.flags}
    assert {"voice.long_sentence", "voice.register_mismatch"} <= off_codes
    long_flag = next(flag for flag in off_voice.flags if flag.code == "voice.long_sentence")
    assert long_flag.severity == common_pb2.FLAG_SEVERITY_WARNING
    span = long_flag.spans[0]
    assert FORMAL_FRENCH[span.start : span.end].startswith("Nous vous prions")
    assert not {"voice.register_mismatch", "voice.long_sentence"} & {flag.code for flag in on_voice.flags}


async def test_score_voice_flags_banned_terms_with_their_spans(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.LearnVoice(_learn_request(banned_terms=["bon marché"]))
    draft = "Tu veux du café Bon Marché ? Notre café n'est pas bon marché, il est torréfié à Lyon."
    clean = await stub.ScoreVoice(
        generation_pb2.ScoreVoiceRequest(
            voice="grain-sauvage", text=draft.replace("bon marché", "frais").replace("Bon Marché", "frais")
        )
    )
    reply = await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="grain-sauvage", text=draft))
    banned = next(flag for flag in reply.flags if flag.code == "voice.banned_term")
    assert banned.severity == common_pb2.FLAG_SEVERITY_ERROR
    assert [draft[s.start : s.end] for s in banned.spans] == ["Bon Marché", "bon marché"]
    assert reply.components.vocabulary < clean.components.vocabulary
    assert "voice.banned_term" not in {flag.code for flag in clean.flags}


async def test_voice_bad_input(stub_for, tenant):
    stub = stub_for(tenant)
    cases = [
        (generation_pb2.LearnVoiceRequest(name="x"), {"documents"}),
        (
            generation_pb2.LearnVoiceRequest(
                name="Bad Name",
                documents=[
                    generation_pb2.SourceDocument(id="a", text="Hello there."),
                    generation_pb2.SourceDocument(id="a", text=" "),
                ],
                preferred_terms=["cheap"],
                banned_terms=["Cheap"],
                exemplar_count=40,
            ),
            {"name", "documents[1].id", "documents[1].text", "banned_terms[0]", "exemplar_count"},
        ),
        (
            generation_pb2.LearnVoiceRequest(
                name="tiny", documents=[generation_pb2.SourceDocument(id="a", text="Too short. Really.")]
            ),
            {"documents"},
        ),
    ]
    for request, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.LearnVoice(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(error_details(raised.value).field_violations) == fields

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="nobody", text="Bonjour."))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="grain-sauvage", text="  "))
    assert error_details(raised.value).field_violations.keys() == {"text"}
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.LearnVoice(
            generation_pb2.LearnVoiceRequest(
                name="from-collection", collection=generation_pb2.CollectionSource(collection="pages")
            )
        )
    # This server reads no collections: it was given no embedding service.
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(raised.value).reason == "EMBEDDING_NOT_CONFIGURED"
    # Nothing was stored by the refused calls, and the service still serves.
    listing = await stub.ListVoiceProfiles(generation_pb2.ListVoiceProfilesRequest())
    assert list(listing.profiles) == []
