"""Every server describes itself (`matcha.runtime.v1.RuntimeService/Describe`, no token needed) with the clearance
its interceptor enforces, and answers reflection under both names clients ask for."""

import json

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from matcha.common.v1 import common_pb2
from matcha.embedding.app import SERVICE_NAME, build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.governance import DataClass
from matcha.runtime.server import RUNTIME_SERVICE
from matcha.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from tests.runtime.test_grpcurl import grpcurl


@pytest.fixture
async def confidential_embedding(embedding_settings, serve, local_encoder):
    """An embedding server cleared for CONFIDENTIAL by its settings, composed as its process composes it."""
    settings = embedding_settings(clearance="CONFIDENTIAL")
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        yield server


async def test_a_server_reports_the_clearance_it_enforces(confidential_embedding, connect, tenant):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{confidential_embedding.port}") as channel:
        reply = await runtime_pb2_grpc.RuntimeServiceStub(channel).Describe(runtime_pb2.DescribeRequest())
    assert reply.name == "embedding" and list(reply.services) == [SERVICE_NAME]
    assert (reply.clearance, reply.inside_trust_boundary) == (common_pb2.DATA_CLASS_CONFIDENTIAL, True)

    # What it said is what it does: one class above is refused, the class itself admitted.
    above = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(confidential_embedding, tenant, data_class=DataClass.PERSONAL)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await above.Embed(embedding_pb2.EmbedRequest(texts=["hello"]))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value).reason == "CLEARANCE_EXCEEDED"
    within = embedding_pb2_grpc.EmbeddingServiceStub(
        connect(confidential_embedding, tenant, data_class=DataClass.CONFIDENTIAL)
    )
    assert (await within.Embed(embedding_pb2.EmbedRequest(texts=["hello"]))).dimension == 384


async def test_grpcurl_reads_the_description_without_a_token(confidential_embedding):
    code, out, err = await grpcurl(f"127.0.0.1:{confidential_embedding.port}", f"{RUNTIME_SERVICE}/Describe")
    assert code == 0, err
    assert json.loads(out) == {
        "name": "embedding",
        "services": [SERVICE_NAME],
        "clearance": "DATA_CLASS_CONFIDENTIAL",
        "inside_trust_boundary": True,
    }


def reflection_messages(package: str):
    """The reflection request and response classes of `package`, from the descriptor of the protocol: v1 is
    v1alpha's file under another package (grpcio-reflection ships only v1alpha), so a v1 client is built here."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    alpha, renamed = f".{file.package}.", f".{package}."
    file.name, file.package = f"grpc/reflection/{package.rsplit('.', 1)[-1]}/reflection.proto", package
    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(alpha, renamed)
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(alpha, renamed)
            method.output_type = method.output_type.replace(alpha, renamed)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ServerReflectionRequest"))
    response = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ServerReflectionResponse"))
    return request, response


@pytest.mark.parametrize("package", ["grpc.reflection.v1", "grpc.reflection.v1alpha"])
async def test_reflection_answers_under_both_names(embedding_server, package):
    request, response = reflection_messages(package)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embedding_server.port}") as channel:
        info = channel.stream_stream(
            f"/{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        replies = [
            reply
            async for reply in info(
                iter([request(list_services="*"), request(file_containing_symbol=RUNTIME_SERVICE)]), timeout=10
            )
        ]
    listed = {service.name for service in replies[0].list_services_response.service}
    assert {SERVICE_NAME, RUNTIME_SERVICE, "grpc.health.v1.Health", f"{package}.ServerReflection"} <= listed
    [described] = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in replies[1].file_descriptor_response.file_descriptor_proto
        if descriptor_pb2.FileDescriptorProto.FromString(raw).package == "matcha.runtime.v1"
    ]
    assert described.name == "matcha/runtime/v1/runtime.proto"
    assert [method.name for method in described.service[0].method] == ["Describe"]
