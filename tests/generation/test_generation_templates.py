"""Versioned prompt templates in PostgreSQL, and generating from them (with a voice)."""

import grpc
import pytest

from matcha.generation.v1 import generation_pb2
from matcha.runtime.client import error_details
from tests.generation.brand_pages import CAFE_PAGES
from tests.support import refused

TEASER = generation_pb2.CreatePromptTemplateRequest(
    name="teaser",
    description="one-line product teaser",
    system="You write for {{brand}}.",
    template="Write one line about {{product}} for {{ audience }}. Keep {{{{braces}}.",
)


async def test_templates_are_versioned_by_content(stub_for, tenant):
    stub = stub_for(tenant)
    first = await stub.CreatePromptTemplate(TEASER)
    assert first.created and first.template.version == 1
    assert list(first.template.variables) == ["audience", "brand", "product"]
    assert len(first.template.sha256) == 64 and first.template.create_subject == "user-1"
    same = await stub.CreatePromptTemplate(TEASER)
    assert not same.created and same.template.version == 1

    changed = generation_pb2.CreatePromptTemplateRequest()
    changed.CopyFrom(TEASER)
    changed.template = "Write two lines about {{product}}."
    second = await stub.CreatePromptTemplate(changed)
    assert second.created and second.template.version == 2 and list(second.template.variables) == ["brand", "product"]

    latest = await stub.GetPromptTemplate(generation_pb2.GetPromptTemplateRequest(name="teaser"))
    old = await stub.GetPromptTemplate(generation_pb2.GetPromptTemplateRequest(name="teaser", version=1))
    assert (latest.template.version, old.template.template) == (2, TEASER.template)
    versions = await stub.ListPromptTemplates(generation_pb2.ListPromptTemplatesRequest(name="teaser", page_size=1))
    assert [t.version for t in versions.templates] == [2] and versions.next_page_token
    more = await stub.ListPromptTemplates(
        generation_pb2.ListPromptTemplatesRequest(name="teaser", page_token=versions.next_page_token)
    )
    assert [t.version for t in more.templates] == [1] and not more.next_page_token
    # A token is bound to its listing: another template's versions, or voices, refuse it.
    for call in (
        stub.ListPromptTemplates(
            generation_pb2.ListPromptTemplatesRequest(name="other", page_token=versions.next_page_token)
        ),
        stub.ListVoiceProfiles(
            generation_pb2.ListVoiceProfilesRequest(name="teaser", page_token=versions.next_page_token)
        ),
    ):
        assert "page_token" in (await refused(call)).field_violations

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub_for("someone-else").GetPromptTemplate(generation_pb2.GetPromptTemplateRequest(name="teaser"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_generate_from_a_template_and_a_voice_records_both_versions(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.CreatePromptTemplate(TEASER)
    await stub.LearnVoice(
        generation_pb2.LearnVoiceRequest(
            name="grain-sauvage",
            documents=[generation_pb2.SourceDocument(id=key, text=text) for key, text in CAFE_PAGES.items()],
        )
    )
    template = generation_pb2.TemplateInput(
        name="teaser", variables={"brand": "Grain Sauvage", "product": "our Ethiopian beans", "audience": "students"}
    )
    parameters = generation_pb2.GenerationParameters(max_new_tokens=6, temperature=0.0)
    plain = await stub.Generate(generation_pb2.GenerateRequest(template=template, parameters=parameters))
    voiced = await stub.Generate(
        generation_pb2.GenerateRequest(
            template=template,
            voice=generation_pb2.VoiceSelection(name="grain-sauvage", exemplar_count=2),
            parameters=parameters,
        )
    )
    assert (plain.provenance.prompt_template, plain.provenance.prompt_template_version) == ("teaser", 1)
    assert plain.provenance.voice_profile == ""
    assert (voiced.provenance.voice_profile, voiced.provenance.voice_profile_version) == ("grain-sauvage", 1)
    # The voice's instructions and two exemplars went into the prompt.
    assert voiced.usage.prompt_tokens > plain.usage.prompt_tokens + 60


async def test_template_bad_input(stub_for, tenant):
    stub = stub_for(tenant)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreatePromptTemplate(
            generation_pb2.CreatePromptTemplateRequest(name="9lives", system="Hi {{ 1bad }}", template=" ")
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value).field_violations) == {"name", "system", "template"}

    await stub.CreatePromptTemplate(TEASER)
    cases = [
        (
            generation_pb2.TemplateInput(name="teaser", variables={"brand": "b", "product": "p"}),
            {"template.variables[audience]"},
        ),
        (
            generation_pb2.TemplateInput(
                name="teaser", variables={"brand": "b", "product": "p", "audience": "a", "tone": "x"}
            ),
            {"template.variables[tone]"},
        ),
    ]
    for template, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Generate(generation_pb2.GenerateRequest(template=template))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(error_details(raised.value).field_violations) == fields

    for request in (
        generation_pb2.GenerateRequest(template=generation_pb2.TemplateInput(name="missing")),
        generation_pb2.GenerateRequest(template=generation_pb2.TemplateInput(name="teaser", version=7)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Generate(request)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_details(raised.value).reason == "TEMPLATE_NOT_FOUND"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Generate(
            generation_pb2.GenerateRequest(prompt="Hello", voice=generation_pb2.VoiceSelection(name="unknown-voice"))
        )
    assert error_details(raised.value).reason == "VOICE_NOT_FOUND"
