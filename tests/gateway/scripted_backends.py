"""A scripted GenerationService for streaming tests and benchmarks: streams the words of its prompt.

No streaming capability service exists yet; this one runs inside the real MatchaServer, so the
gateway meets real gRPC streaming, token verification, the governance interceptor and cancellation.
"""

import asyncio

from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.runtime.errors import FieldViolation, InvalidArgument, Unavailable
from matcha.runtime.interceptors import current_call
from matcha.runtime.server import ServiceDefinition

GENERATION_SERVICE = generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name
WAIT, FAIL = "<wait>", "<fail>"


class WordStreamingGeneration(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def GenerateStream(self, request, context):
        if not request.prompt:
            raise InvalidArgument("prompt is required", violations=[FieldViolation("prompt", "must not be empty")])
        call = current_call()
        yield generation_pb2.GenerateStreamResponse(text_delta=f"[{call.tenant} {call.purpose}]")
        try:
            for word in request.prompt.split():
                if word == WAIT:
                    await asyncio.sleep(3600)
                if word == FAIL:
                    raise Unavailable("the model backend went away", reason="MODEL_BACKEND_DOWN")
                yield generation_pb2.GenerateStreamResponse(text_delta=word)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        result = generation_pb2.GenerateResponse(
            text=request.prompt, finish_reason=generation_pb2.FINISH_REASON_END_OF_TEXT
        )
        yield generation_pb2.GenerateStreamResponse(result=result)


def word_streaming_definition(servicer: WordStreamingGeneration) -> ServiceDefinition:
    return ServiceDefinition(
        "generation",
        [GENERATION_SERVICE],
        lambda server: generation_pb2_grpc.add_GenerationServiceServicer_to_server(servicer, server),
    )
