"""Every rule of the role table, tried from both sides on the real conductor, embedding and review services:
a principal holding only the role gets past the gate; one holding every other role (none that implies it) is
refused with PERMISSION_DENIED, MISSING_ROLE naming the role."""

import grpc
import pytest
from google.protobuf import descriptor_pool

# Imported for the descriptors they register.
import matcha.conductor.v1.conductor_pb2
import matcha.embedding.v1.embedding_pb2
import matcha.review.v1.review_pb2
from matcha.runtime import roles
from matcha.runtime.client import error_details

SERVED = (
    matcha.conductor.v1.conductor_pb2.DESCRIPTOR.services_by_name["ConductorService"].full_name,
    matcha.embedding.v1.embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name,
    matcha.review.v1.review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name,
)
EVERY_ROLE = frozenset(
    {roles.ANALYST, roles.AUTHOR, roles.OPERATOR, roles.REVIEWER, roles.PUBLISHER, roles.AUDITOR, roles.REVIEW_SERVICE}
)
RULES = [
    (method, needed) for method, needed in sorted(roles.ROLE_TABLE.items()) if method.split("/")[1] in SERVED and needed
]


def without(needed: tuple[str, ...]) -> list[str]:
    """Every role that neither is one of `needed` nor implies one."""
    return sorted(
        role for role in EVERY_ROLE if role not in needed and not set(roles.IMPLIED.get(role, ())) & set(needed)
    )


@pytest.fixture
async def servers(conductor_server, embedding_server, review_server):
    return {
        "matcha.conductor.v1.ConductorService": conductor_server,
        "matcha.embedding.v1.EmbeddingService": embedding_server,
        "matcha.review.v1.ReviewService": review_server,
    }


async def call(
    issuer, server, tenant: str, method: str, held: list[str], stream_wait: float = 10.0
) -> grpc.aio.AioRpcError | None:
    """Calls `method` with an empty request; a server stream is read for at most `stream_wait` seconds (an admitted
    watch stays open, a refusal ends it at once)."""
    service_name, method_name = method.strip("/").split("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service_name).FindMethodByName(method_name)
    token = issuer.mint(subject="someone", tenant=tenant, roles=held)
    metadata = (("authorization", f"Bearer {token}"), ("x-matcha-data-class", "INTERNAL"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        try:
            if descriptor.server_streaming:
                stream = channel.unary_stream(method)(b"", metadata=metadata, timeout=stream_wait)
                async for _ in stream:
                    break
                stream.cancel()
            else:
                await channel.unary_unary(method)(b"", metadata=metadata, timeout=30.0)
        except grpc.aio.AioRpcError as error:
            return error
    return None


@pytest.mark.parametrize(("method", "needed"), RULES, ids=[method for method, _ in RULES])
async def test_each_rule_admits_its_role_and_refuses_the_others(servers, issuer, tenant, method, needed):
    server = servers[method.split("/")[1]]
    refused = await call(issuer, server, tenant, method, without(needed))
    assert refused is not None and refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused
    details = error_details(refused)
    assert details.reason == "MISSING_ROLE" and details.metadata["role"] == needed[0]

    for role in needed:
        admitted = await call(issuer, server, tenant, method, [role], stream_wait=1.0)
        # Past the gate the empty request may be refused for what it lacks, never for the caller's roles.
        assert admitted is None or error_details(admitted).reason != "MISSING_ROLE", (role, admitted)


async def test_a_method_not_in_the_table_is_never_open():
    assert roles.required_roles("/matcha.example.v1.NewService/NewMethod") == (roles.ANALYST,)
