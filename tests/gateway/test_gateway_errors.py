"""Refusals through the gateway: each is a google.rpc.Status JSON with the matching HTTP status."""

import json
import socket

import httpx
import pytest
from grpc_health.v1 import health_pb2

from matcha.embedding.app import SERVICE_NAME as EMBEDDING_SERVICE
from matcha.gateway.settings import GatewaySettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.review.v1 import review_pb2
from matcha.runtime.server import ServiceDefinition

GENERATION_SERVICE = generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name
REVIEW_SERVICE = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name


def _details(body: dict, type_name: str) -> list[dict]:
    return [detail for detail in body["details"] if detail["@type"] == f"type.googleapis.com/google.rpc.{type_name}"]


def _violations(body: dict) -> dict[str, str]:
    return {
        violation["field"]: violation["description"]
        for detail in _details(body, "BadRequest")
        for violation in detail["fieldViolations"]
    }


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/embeddings:embed", {"texts": "not a list"}, "texts"),
        ("/v1/embeddings:embed", {"texts": [1, 2]}, "texts"),
        ("/v1/embeddings:embed", {"texts": ["ok"], "colour": "red"}, "colour"),
        ("/v1/collections/c/documents:search", {"text": "x", "topK": "many"}, "topK"),
        ("/v1/collections/c/documents:search", {"text": "x", "minScore": "high"}, "minScore"),
        ("/v1/collections/c/documents:upsert", {"documents": [{"id": "a", "metadata": 3}]}, "documents[0].metadata"),
        (
            "/v1/collections/c/documents:upsert",
            {"documents": [{"id": "a", "policy": {"dataClass": "SECRET"}}]},
            "documents[0].policy.dataClass",
        ),
        ("/v1/embeddings:embed", [1, 2], "body"),
        ("/v1/embeddings:embed", None, "body"),
        ("/v1/embeddings:embed", "texts", "body"),
    ],
)
async def test_wrong_types_are_400_with_the_field(http, path, body, field):
    reply = await http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    status = reply.json()
    assert status["code"] == 3 and status["message"]
    assert field in _violations(status), status
    assert "Traceback" not in reply.text


async def test_malformed_json_is_400_on_the_body(http):
    reply = await http.post(
        "/v1/embeddings:embed", content=b'{"texts": [', headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert "body" in _violations(reply.json())


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"documents": [{"id": "a", "metadata": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}]}", "in place"),
        ('{"documents": [{"id": "a", "metadata": ' + '{"a": ' * 80 + "1" + "}" * 80 + "}]}", "under the parser's"),
    ],
)
async def test_json_nested_too_deep_is_400_and_the_gateway_keeps_serving(http, body, where):
    """100,000 levels overflowed the JSON decoder's recursion (a 500); 80 levels went on to the service."""
    reply = await http.post(
        "/v1/collections/c/documents:upsert", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400, (where, reply.text[:300])
    assert "nests deeper than 64 levels" in _violations(reply.json())["body"]
    assert (await http.post("/v1/embeddings:embed", json={"texts": ["still serving"]})).status_code == 200


async def test_service_validation_keeps_its_field_violations(http):
    reply = await http.post("/v1/embeddings:embed", json={"texts": []})
    assert reply.status_code == 400
    assert "texts" in _violations(reply.json())


async def test_unknown_query_parameter_is_400(http):
    reply = await http.get("/v1/collections", params={"pageSize": "3"})
    assert reply.status_code == 400
    assert "pageSize" in _violations(reply.json())


@pytest.mark.parametrize("path", ["/v1/nothing/here", "/v1/no%0Awhere", "/"])
async def test_unknown_route_is_404_json(http, path):
    reply = await http.get(path)
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == 5 and _details(body, "ErrorInfo")[0]["reason"] == "ROUTE_NOT_FOUND"


async def test_wrong_method_is_405_with_allow(http):
    reply = await http.put("/v1/collections/reviews", json={})
    assert reply.status_code == 405
    assert set(reply.headers["allow"].split(", ")) == {"GET", "DELETE"}
    assert _details(reply.json(), "ErrorInfo")[0]["reason"] == "METHOD_NOT_ALLOWED"


async def test_body_over_the_limit_is_413_and_the_gateway_keeps_serving(http):
    big = {"texts": ["x" * 1024] * (9 * 1024)}  # about 9 MiB, over the default 8 MiB
    reply = await http.post("/v1/embeddings:embed", json=big)
    assert reply.status_code == 413
    assert _details(reply.json(), "ErrorInfo")[0]["reason"] == "BODY_TOO_LARGE"
    after = await http.post("/v1/embeddings:embed", json={"texts": ["still here"]})
    assert after.status_code == 200


async def test_chunked_body_over_the_limit_is_413(start_gateway, embedding_server, issuer, tenant):
    token = issuer.mint(subject="u", tenant=tenant, roles=["analyst", "author", "operator"])

    async def chunks():
        for _ in range(8):
            yield b" " * 256

    backends = {EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"}
    async with (
        start_gateway(backends, gateway_max_body_bytes=1024) as base_url,
        httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}) as client,
    ):
        reply = await client.post("/v1/embeddings:embed", content=chunks())
    assert reply.status_code == 413


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "TOKEN_MISSING"),
        ({"authorization": "Basic abc"}, "TOKEN_MALFORMED"),
        ({"authorization": "Bearer not.a.jwt"}, "TOKEN_INVALID"),
    ],
)
async def test_missing_or_bad_token_is_401(gateway_url, headers, reason):

    async with httpx.AsyncClient(base_url=gateway_url) as client:
        reply = await client.post("/v1/embeddings:embed", json={"texts": ["x"]}, headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert _details(reply.json(), "ErrorInfo")[0]["reason"] == reason


async def test_expired_token_is_401(gateway_url, issuer, tenant):

    token = issuer.mint(subject="u", tenant=tenant, roles=["analyst", "author", "operator"], ttl_seconds=-60)
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        reply = await client.get("/v1/collections", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 401
    assert _details(reply.json(), "ErrorInfo")[0]["reason"] == "TOKEN_EXPIRED"


async def test_governance_headers_reach_the_service(http_as, tenant):
    # The embedding service refuses a class above its clearance and a tenant header that is not the token's.
    bad_class = await http_as(tenant, data_class="TOP_SECRET").get("/v1/collections")
    assert bad_class.status_code == 400
    assert "metadata.x-matcha-data-class" in _violations(bad_class.json())

    client = http_as(tenant)
    mismatch = await client.get("/v1/collections", headers={"x-matcha-tenant": "someone-else"})
    assert mismatch.status_code == 403
    assert _details(mismatch.json(), "ErrorInfo")[0]["reason"] == "TENANT_MISMATCH"


async def test_request_id_is_echoed(http):
    reply = await http.get("/v1/collections", headers={"x-request-id": "req-42"})
    assert reply.headers["x-request-id"] == "req-42"
    generated = await http.get("/v1/collections")
    assert len(generated.headers["x-request-id"]) == 32


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_backend_down_or_not_configured_is_503(start_gateway, issuer, tenant):

    token = issuer.mint(subject="u", tenant=tenant, roles=["reviewer"])
    port = _closed_port()
    async with (
        start_gateway({REVIEW_SERVICE: f"127.0.0.1:{port}"}) as base_url,
        httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}) as client,
    ):
        down = await client.get("/v1/reviews")
        not_configured = await client.post("/v1/embeddings:embed", json={"texts": ["x"]})
        ready = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["code"] == 14
    info = _details(down.json(), "ErrorInfo")[0]
    assert info["reason"] == "SERVICE_UNAVAILABLE" and info["metadata"] == {"service": REVIEW_SERVICE}
    assert str(port) not in down.text  # the backend's address is not the client's business
    assert not_configured.status_code == 503
    assert _details(not_configured.json(), "ErrorInfo")[0]["reason"] == "SERVICE_NOT_CONFIGURED"
    # Not critical: the pod stays ready for the routes of its other backends, and says what is down.
    assert ready.status_code == 200
    assert ready.json() == {"status": "SERVING", "services": {REVIEW_SERVICE: "UNREACHABLE"}, "critical": []}


async def test_readiness_needs_the_critical_backends_only(start_gateway, embedding_server):
    backends = {EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}", REVIEW_SERVICE: f"127.0.0.1:{_closed_port()}"}

    async def readiness(critical: list[str]) -> httpx.Response:
        async with (
            start_gateway(backends, gateway_critical_backends=critical) as base_url,
            httpx.AsyncClient(base_url=base_url) as client,
        ):
            return await client.get("/readyz")

    down = await readiness([REVIEW_SERVICE])
    assert down.status_code == 503
    assert down.json()["status"] == "NOT_SERVING" and down.json()["services"][REVIEW_SERVICE] == "UNREACHABLE"
    up = await readiness([EMBEDDING_SERVICE])
    assert up.status_code == 200 and up.json()["critical"] == [EMBEDDING_SERVICE]
    with pytest.raises(ValueError, match="without a backend"):
        GatewaySettings(gateway_backends=backends, gateway_critical_backends=["matcha.nope.v1.Nope"])


async def test_unimplemented_rpc_is_501(start_gateway, serve, embedding_settings, issuer, tenant):

    # The generated base servicer: every RPC answers UNIMPLEMENTED, as a service still being built does.
    definition = ServiceDefinition(
        "generation",
        [GENERATION_SERVICE],
        lambda server: generation_pb2_grpc.add_GenerationServiceServicer_to_server(
            generation_pb2_grpc.GenerationServiceServicer(), server
        ),
    )
    token = issuer.mint(subject="u", tenant=tenant, roles=["analyst", "author", "operator"])
    async with (
        serve(definition, embedding_settings()) as server,
        start_gateway({GENERATION_SERVICE: f"127.0.0.1:{server.port}"}) as base_url,
        httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}) as client,
    ):
        reply = await client.get("/v1/models")
        ready = await client.get("/readyz")
    assert reply.status_code == 501
    assert reply.json()["code"] == 12
    assert ready.status_code == 200
    assert ready.json()["services"] == {GENERATION_SERVICE: health_pb2.HealthCheckResponse.ServingStatus.Name(1)}


async def test_health_and_readiness(gateway_url):

    async with httpx.AsyncClient(base_url=gateway_url) as client:
        healthz = await client.get("/healthz")
        readyz = await client.get("/readyz")
        wrong = await client.post("/healthz")
    assert healthz.status_code == 200 and healthz.json() == {"status": "SERVING"}
    assert readyz.status_code == 200
    assert readyz.json() == {"status": "SERVING", "services": {EMBEDDING_SERVICE: "SERVING"}, "critical": []}
    assert wrong.status_code == 405


async def test_cors_preflight_and_headers(start_gateway, embedding_server):

    backends = {EMBEDDING_SERVICE: f"127.0.0.1:{embedding_server.port}"}
    async with (
        start_gateway(backends, gateway_cors_origins=["https://app.example"]) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        preflight = await client.options(
            "/v1/embeddings:embed",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, x-matcha-purpose",
            },
        )
        refused = await client.options(
            "/v1/embeddings:embed",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        simple = await client.get("/healthz", headers={"origin": "https://app.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
