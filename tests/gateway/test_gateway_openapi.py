"""The OpenAPI document describes the gateway truthfully: schemathesis against the live gateway and service."""

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

from matcha.gateway.catalog import Catalog
from matcha.gateway.proto_docs import ProtoComments, comments_of_protos

SCHEMATHESIS_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


async def test_openapi_document_covers_every_annotated_rpc_with_proto_comments(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    document = reply.json()
    assert document["openapi"] == "3.1.0"
    operations = {
        operation["operationId"]: (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    routes = Catalog.from_generated_modules().routes
    assert {route.operation_id for route in routes} == set(operations)
    assert operations["EmbeddingService_GetCollection"] == ("/v1/collections/{name}", "get")

    search = document["paths"]["/v1/collections/{collection}/documents:search"]["post"]
    assert search["description"].startswith("Nearest-neighbour search by cosine similarity")
    body = search["requestBody"]["content"]["application/json"]["schema"]
    assert "collection" not in body["properties"]  # bound by the path
    assert body["properties"]["topK"]["description"].startswith("Number of results")
    schemas = document["components"]["schemas"]
    collection = schemas["matcha.embedding.v1.Collection"]
    assert collection["properties"]["documentCount"]["type"] == "string"  # int64
    assert collection["properties"]["createTime"]["format"] == "date-time"
    assert schemas["matcha.common.v1.DataClass"]["enum"][0] == "DATA_CLASS_UNSPECIFIED"

    watch = document["paths"]["/v1/runs/{run_id}:watch"]["get"]["responses"]["200"]["content"]
    assert set(watch) == {"text/event-stream", "application/x-ndjson"}
    event = watch["text/event-stream"]["schema"]  # each event, as Open API 3.1 reads an event stream's schema
    assert event["required"] == ["data"] and event["properties"]["event"]["enum"] == ["message", "error"]
    assert event["properties"]["data"]["contentSchema"]["anyOf"][0] == {
        "$ref": "#/components/schemas/matcha.conductor.v1.WatchRunResponse"
    }


def test_shipped_proto_comments_are_current():
    shipped = ProtoComments.shipped()
    assert shipped.to_json() == comments_of_protos().to_json(), "run `python -m matcha.gateway.proto_docs`"


# Service tag -> (phases, examples per operation, test cases the run must at least generate). Generation runs
# the real local model behind the mesh gateway, with a small token cap (tests/gateway/conftest.py).
FUZZED_SERVICES = {
    "EmbeddingService": ("examples,coverage,fuzzing", 5, 200),
    "ClassificationService": ("examples,coverage,fuzzing", 5, 200),
    "ReviewService": ("examples,coverage,fuzzing", 5, 200),
    "SegmentationService": ("examples,coverage,fuzzing", 5, 200),
    "ConductorService": ("examples,coverage,fuzzing", 5, 100),
    "GenerationService": ("examples,coverage,fuzzing", 5, 100),
}


@pytest.mark.parametrize("service", list(FUZZED_SERVICES))
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    service, mesh_gateway_url, issuer, tenant, tmp_path: Path
):
    """One run per service tag, against one gateway in front of the real services (tests/gateway/conftest.py
    `mesh_gateway_url`): every answer is either a refusal (4xx) or a success, each matching its schema."""
    phases, examples, enough = FUZZED_SERVICES[service]
    token = issuer.mint(subject="fuzzer", tenant=tenant, roles=["analyst", "admin"])
    report = tmp_path / "schemathesis.json"
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{mesh_gateway_url}/openapi.json",
        "--include-tag",
        service,
        "--checks",
        SCHEMATHESIS_CHECKS,
        "--max-examples",
        str(examples),
        "--phases",
        phases,
        "--seed",
        "7",
        # Watch streams (a run's progress, review events, segment changes) stay open until the client leaves: a
        # fuzzer reading a whole response would wait forever. Streams are tested in test_gateway_streaming.py and
        # test_gateway_conductor.py.
        "--exclude-operation-id-regex",
        "_Watch",
        # Any other request that hangs fails the run instead of holding the suite.
        "--request-timeout",
        "60",
        # One worker: CPython 3.11's parser is not thread-safe, and Hypothesis parses lambdas' source while it
        # describes strategies (`SystemError: AST constructor recursion depth mismatch` with several workers).
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        "X-Matcha-Purpose: campaign",
        "--header",
        "X-Matcha-Data-Class: INTERNAL",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text[-6000:]
    summary = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["test_cases"]["generated"] >= enough, "the run must actually exercise the API"
