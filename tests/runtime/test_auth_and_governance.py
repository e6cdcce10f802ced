"""Authentication, tenancy and clearance at the service boundary; probes stay open."""

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.auth import TokenIssuer, ensure_signing_keys
from matcha.runtime.client import error_details, open_channel
from matcha.runtime.governance import DataClass

LIST = embedding_pb2.ListCollectionsRequest()


async def call_with_metadata(server, metadata):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListCollections(LIST, metadata=metadata)
        return error_details(caught.value)


async def test_missing_token_is_unauthenticated(embedding_server):
    details = await call_with_metadata(embedding_server, ())
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert details.reason == "TOKEN_MISSING"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer not-a-jwt", "Bearer "])
async def test_malformed_token_is_unauthenticated(embedding_server, header):
    details = await call_with_metadata(embedding_server, (("authorization", header),))
    assert details.code == grpc.StatusCode.UNAUTHENTICATED


async def test_token_signed_by_another_key_is_refused(embedding_server, tmp_path):
    stranger = TokenIssuer.from_file(ensure_signing_keys(tmp_path).private)
    token = stranger.mint(subject="mallory", tenant="acme", roles=["admin"])
    details = await call_with_metadata(embedding_server, (("authorization", f"Bearer {token}"),))
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_expired_token_is_refused(embedding_server, issuer):
    token = issuer.mint(subject="u", tenant="acme", roles=[], ttl_seconds=-60)
    details = await call_with_metadata(embedding_server, (("authorization", f"Bearer {token}"),))
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


async def test_a_token_verified_once_still_expires(embedding_server, issuer):
    expires = time.time() + 4  # long enough for the first call on a loaded machine
    token = issuer.mint(subject="u", tenant="acme", roles=["analyst"], ttl_seconds=4)
    async with open_channel(f"127.0.0.1:{embedding_server.port}", token=token) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        await stub.ListCollections(LIST)  # verified, then remembered
        await asyncio.sleep(max(0.0, expires - time.time()) + 1.0)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListCollections(LIST)
    assert error_details(caught.value).reason == "TOKEN_EXPIRED"


async def test_tenant_header_must_match_the_token(embedding_server, issuer):
    token = issuer.mint(subject="u", tenant="acme", roles=[])
    details = await call_with_metadata(
        embedding_server, (("authorization", f"Bearer {token}"), ("x-matcha-tenant", "globex"))
    )
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "TENANT_MISMATCH")


async def test_unknown_data_class_header(embedding_server, issuer):
    token = issuer.mint(subject="u", tenant="acme", roles=[])
    details = await call_with_metadata(
        embedding_server, (("authorization", f"Bearer {token}"), ("x-matcha-data-class", "SECRET"))
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(details.field_violations) == ["metadata.x-matcha-data-class"]


async def test_clearance_refuses_payloads_above_it(embedding_settings, serve, local_encoder, connect):
    settings = embedding_settings(clearance="CONFIDENTIAL")
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        confidential = embedding_pb2_grpc.EmbeddingServiceStub(
            connect(server, "acme", data_class=DataClass.CONFIDENTIAL)
        )
        assert (await confidential.Embed(embedding_pb2.EmbedRequest(texts=["ok"]))).dimension == 384
        personal = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, "acme", data_class=DataClass.PERSONAL))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await personal.Embed(embedding_pb2.EmbedRequest(texts=["Alice Martin, alice@example.com"]))
        details = error_details(caught.value)
        assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "CLEARANCE_EXCEEDED")
        assert details.metadata == {"data_class": "PERSONAL", "clearance": "CONFIDENTIAL"}


def test_a_service_outside_the_trust_boundary_cannot_be_cleared_for_personal_data(embedding_settings):
    with pytest.raises(ValueError, match="INTERNAL at most"):
        embedding_settings(trust_boundary="outside", clearance="PERSONAL")


async def test_health_and_reflection_need_no_token(embedding_server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embedding_server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "matcha.embedding.v1.EmbeddingService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # Both reflection versions (newer clients ask v1 first; the messages are the same on the wire).
        for version in ("v1alpha", "v1"):
            info = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            responses = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            async for response in responses:
                names = {service.name for service in response.list_services_response.service}
                assert {"matcha.embedding.v1.EmbeddingService", f"grpc.reflection.{version}.ServerReflection"} <= names
                break


async def test_unexpected_errors_become_internal_with_the_trace_id(embedding_settings, serve, issuer):
    class BrokenEncoder:
        info = None

        async def load(self):
            return None

        async def encode(self, texts):
            raise RuntimeError("secret internals: /etc/passwd")

        async def close(self):
            return None

    settings = embedding_settings()
    async with serve(build_embedding_service(settings, encoder=BrokenEncoder()), settings) as server:
        channel = open_channel(
            f"127.0.0.1:{server.port}", token=issuer.mint(subject="u", tenant="acme", roles=["analyst"])
        )
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Embed(embedding_pb2.EmbedRequest(texts=["boom"]))
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in caught.value.details() and "trace id" in caught.value.details()
        await channel.close()


async def test_a_token_living_longer_than_the_maximum_is_refused(embedding_server, issuer):
    """Ten years of validity for one stolen token: refused, whatever its signature."""
    token = issuer.mint(subject="u", tenant="acme", roles=["analyst"], ttl_seconds=10 * 365 * 24 * 3600)
    details = await call_with_metadata(embedding_server, (("authorization", f"Bearer {token}"),))
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_LIFETIME_EXCEEDED")


async def test_a_rotated_key_keeps_old_tokens_valid_and_services_learn_the_new_key(tmp_path, monkeypatch):
    """`matcha keys rotate` while a verifier runs: tokens of the old key still pass, tokens of the new key pass
    once the verifier reads its key file again, and a key rotated out twice no longer verifies anything."""
    from matcha.runtime import auth

    monkeypatch.setattr(auth, "KEY_RELOAD_SECONDS", 0.0)
    paths = ensure_signing_keys(tmp_path)
    verifier = auth.TokenVerifier.from_file(paths.public)
    first = TokenIssuer.from_file(paths.private).mint(subject="u", tenant="acme", roles=["analyst"])
    assert verifier.verify(f"Bearer {first}").subject == "u"
    auth.rotate_signing_keys(tmp_path)
    second = TokenIssuer.from_file(paths.private).mint(subject="v", tenant="acme", roles=["analyst"])
    assert verifier.verify(f"Bearer {second}").subject == "v"  # an unknown key id: the file is read again
    fresh = auth.TokenVerifier.from_file(paths.public)
    assert fresh.verify(f"Bearer {first}").subject == "u"  # the previous key is kept beside the new one
    auth.rotate_signing_keys(tmp_path)
    retired = auth.TokenVerifier.from_file(paths.public)
    with pytest.raises(auth.Unauthenticated, match="unknown key"):
        retired.verify(f"Bearer {first}")
    assert retired.verify(f"Bearer {second}").subject == "v"


def test_keys_rotate_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from matcha.cli.main import cli
    from matcha.runtime.auth import load_public_keys

    paths = ensure_signing_keys(tmp_path / "keys")
    before = set(load_public_keys(paths.public))
    result = CliRunner().invoke(cli, ["keys", "rotate", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    after = load_public_keys(paths.public)
    new_key = TokenIssuer.from_file(paths.private).key_id
    assert new_key in result.output and set(after) == before | {new_key}
