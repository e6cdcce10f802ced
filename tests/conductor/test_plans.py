"""Plans: registration and versions, validation against descriptors and as a DAG, export round trip."""

import grpc
import pytest
from google.protobuf import json_format

from matcha.conductor.v1 import conductor_pb2
from tests.support import refused

SEARCH_PLAN = """
name: review-search
description: find reviews close to a theme
inputs:
  - {name: theme, type: string, required: true}
  - {name: top_k, type: integer, default_value: 3}
steps:
  - id: search
    call: matcha.embedding.v1.EmbeddingService/Search
    request:
      collection: reviews
      text: "${inputs.theme}"
      top_k: "${inputs.top_k}"
    output: "response.results.map(r, r.id)"
  - id: embed_each
    call: matcha.embedding.v1.EmbeddingService/Embed
    for_each: {items: "steps.search.output", concurrency: 2}
    request: {texts: ["review ${item}"]}
    retry: {max_attempts: 4, initial_backoff: 0.2s, codes: [UNAVAILABLE]}
    timeout: 5s
outputs:
  ids: "steps.search.output"
purposes: [listening]
"""


def register(stub, document: str, **kwargs):
    return stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=document, **kwargs))


async def test_register_versions_get_list_and_export(conductor_for, tenant):
    stub = conductor_for(tenant)
    first = await register(stub, SEARCH_PLAN)
    assert first.created and first.plan.version == 1
    assert first.plan.spec.steps[1].for_each.concurrency == 2
    assert first.plan.spec.steps[1].retry.max_attempts == 4
    assert first.plan.source == SEARCH_PLAN and first.plan.source_format == conductor_pb2.PLAN_FORMAT_YAML

    again = await register(stub, SEARCH_PLAN.replace("description: find", "description:   find"))
    assert not again.created and again.plan.version == 1 and again.plan.sha256 == first.plan.sha256

    second = await register(stub, SEARCH_PLAN.replace("concurrency: 2", "concurrency: 3"))
    assert second.created and second.plan.version == 2 and second.plan.sha256 != first.plan.sha256

    latest = await stub.GetPlan(conductor_pb2.GetPlanRequest(name="review-search"))
    assert latest.plan.version == 2
    old = await stub.GetPlan(conductor_pb2.GetPlanRequest(name="review-search", version=1))
    assert old.plan.spec.steps[1].for_each.concurrency == 2

    await register(stub, SEARCH_PLAN.replace("name: review-search", "name: another"))
    listed = await stub.ListPlans(conductor_pb2.ListPlansRequest())
    assert [(plan.name, plan.version) for plan in listed.plans] == [("another", 1), ("review-search", 2)]
    versions = await stub.ListPlans(conductor_pb2.ListPlansRequest(name="review-search"))
    assert [plan.version for plan in versions.plans] == [2, 1]

    for plan_format in (conductor_pb2.PLAN_FORMAT_YAML, conductor_pb2.PLAN_FORMAT_JSON):
        exported = await stub.ExportPlan(
            conductor_pb2.ExportPlanRequest(name="review-search", version=1, format=plan_format)
        )
        assert exported.version == 1
        validated = await stub.RegisterPlan(
            conductor_pb2.RegisterPlanRequest(document=exported.document, validate_only=True)
        )
        assert validated.plan.version == 0 and validated.plan.sha256 == first.plan.sha256


async def test_plan_given_as_a_message_is_the_same_plan(conductor_for, tenant):
    stub = conductor_for(tenant)
    from_document = await register(stub, SEARCH_PLAN)
    spec = conductor_pb2.PlanSpec()
    json_format.ParseDict(json_format.MessageToDict(from_document.plan.spec), spec)
    from_message = await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(spec=spec))
    assert not from_message.created and from_message.plan.sha256 == from_document.plan.sha256


async def test_plans_are_scoped_to_the_tenant(conductor_for, tenant):
    await register(conductor_for(tenant), SEARCH_PLAN)
    details = await refused(
        conductor_for(f"{tenant}-other").GetPlan(conductor_pb2.GetPlanRequest(name="review-search")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert details.reason == "PLAN_NOT_FOUND"


BROKEN = {
    "unknown method": (
        SEARCH_PLAN.replace("EmbeddingService/Search", "EmbeddingService/Find"),
        "steps[search].call",
        "unknown method",
    ),
    "unknown request field": (
        SEARCH_PLAN.replace("collection: reviews", "collektion: reviews"),
        "steps[search].request.collektion",
        "unknown field",
    ),
    "type mismatch": (
        SEARCH_PLAN.replace('top_k: "${inputs.top_k}"', "top_k: many"),
        "steps[search].request.top_k",
        "integer",
    ),
    "undefined step": (
        SEARCH_PLAN.replace('items: "steps.search.output"', 'items: "steps.serch.output"'),
        "steps[embed_each].for_each.items",
        "undefined step 'serch'",
    ),
    "undefined input": (
        SEARCH_PLAN.replace("${inputs.theme}", "${inputs.topic}"),
        "steps[search].request.text",
        "undefined input 'topic'",
    ),
    "invalid CEL": (
        SEARCH_PLAN.replace("response.results.map(r, r.id)", "response.results.map(r, r.id"),
        "steps[search].output",
        "invalid CEL",
    ),
    "never retried code": (
        SEARCH_PLAN.replace("codes: [UNAVAILABLE]", "codes: [UNAVAILABLE, INVALID_ARGUMENT]"),
        "steps[embed_each].retry.codes[1]",
        "never retried",
    ),
    "item outside a fan-out": (
        SEARCH_PLAN.replace("${inputs.theme}", "${item}"),
        "steps[search].request.text",
        "unknown variable 'item'",
    ),
    "streaming method": (
        SEARCH_PLAN.replace(
            "matcha.embedding.v1.EmbeddingService/Search", "matcha.segmentation.v1.SegmentationService/IngestEvents"
        ),
        "steps[search].call",
        "streaming",
    ),
    "cycle": (
        SEARCH_PLAN.replace('    output: "response.results.map(r, r.id)"', "    depends_on: [embed_each]"),
        "steps[embed_each].depends_on",
        "cycle",
    ),
    "comprehensions nested too deep": (
        SEARCH_PLAN.replace(
            "response.results.map(r, r.id)",
            "response.results.map(a, response.results.map(b, response.results.map(c, response.results.map(d, 1))))",
        ),
        "steps[search].output",
        "nest 4 deep",
    ),
    "expression too long": (
        SEARCH_PLAN.replace("response.results.map(r, r.id)", "response.results.map(r, r.id)" + " + []" * 1000),
        "steps[search].output",
        "longer than 4096 characters",
    ),
    "unknown field of the reply": (
        SEARCH_PLAN.replace("response.results.map(r, r.id)", "response.reslts.map(r, r.id)"),
        "steps[search].output",
        "response: matcha.embedding.v1.SearchResponse has no field 'reslts'",
    ),
    "unknown field of a projected element": (
        SEARCH_PLAN.replace("response.results.map(r, r.id)", "response.results.map(r, r.idd)"),
        "steps[search].output",
        "r: matcha.embedding.v1.SearchResult has no field 'idd'",
    ),
    "unknown field of a step's output": (
        SEARCH_PLAN.replace('output: "response.results.map(r, r.id)"', 'output: "response.results"').replace(
            'items: "steps.search.output"', 'items: "steps.search.output.first"'
        ),
        "steps[embed_each].for_each.items",
        "steps.search.output: 'first' of a list, which has no fields",
    ),
    "message into a string field": (
        SEARCH_PLAN.replace('    output: "response.results.map(r, r.id)"\n', "")
        .replace('items: "steps.search.output"', 'items: "steps.search.output.results"')
        .replace('texts: ["review ${item}"]', 'texts: ["${steps.search.output}"]'),
        "steps[embed_each].request.texts[0]",
        "a matcha.embedding.v1.SearchResponse message into a string field",
    ),
    "message interpolated into text": (
        SEARCH_PLAN.replace('    output: "response.results.map(r, r.id)"\n', "")
        .replace('items: "steps.search.output"', 'items: "steps.search.output.results"')
        .replace('texts: ["review ${item}"]', 'texts: ["about ${steps.search.output}"]'),
        "steps[embed_each].request.texts[0]",
        "message interpolated into text",
    ),
    "list into a scalar field": (
        SEARCH_PLAN.replace(
            "  - {name: top_k, type: integer, default_value: 3}",
            "  - {name: top_k, type: integer, default_value: 3}\n  - {name: tags, type: list}",
        ).replace("collection: reviews", 'collection: "${inputs.tags}"'),
        "steps[search].request.collection",
        "a list into a string field",
    ),
    "scalar into a repeated field": (
        SEARCH_PLAN.replace('texts: ["review ${item}"]', 'texts: "${inputs.theme}"'),
        "steps[embed_each].request.texts",
        "a string into a repeated field",
    ),
    "malformed YAML": ("name: x\nsteps: [\n", "document", ""),
    "bad duration": (SEARCH_PLAN.replace("timeout: 5s", "timeout: soon"), "steps[embed_each].timeout", "duration"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_invalid_plans_are_refused_naming_step_and_field(conductor_for, tenant, case):
    stub = conductor_for(tenant)
    document, field_path, words = BROKEN[case]
    details = await refused(register(stub, document))
    assert field_path in details.field_violations, details.field_violations
    assert words in details.field_violations[field_path]
    # Nothing was stored, and the service still answers.
    await refused(stub.GetPlan(conductor_pb2.GetPlanRequest(name="review-search")), grpc.StatusCode.NOT_FOUND)
    assert (await register(stub, SEARCH_PLAN)).plan.version == 1


async def test_every_violation_is_reported_at_once(conductor_for, tenant):
    document = SEARCH_PLAN.replace("collection: reviews", "collektion: reviews").replace("timeout: 5s", "timeout: x")
    details = await refused(register(conductor_for(tenant), document))
    assert {"steps[search].request.collektion", "steps[embed_each].timeout"} <= details.field_violations.keys()


async def test_unknown_version_is_not_found(conductor_for, tenant):
    stub = conductor_for(tenant)
    await register(stub, SEARCH_PLAN)
    details = await refused(
        stub.ExportPlan(conductor_pb2.ExportPlanRequest(name="review-search", version=7)), grpc.StatusCode.NOT_FOUND
    )
    assert details.metadata["version"] == "7"
