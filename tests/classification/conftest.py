"""Classification fixtures: one in-process server sharing the session's MiniLM with the embedding tests."""

from collections.abc import AsyncIterator, Callable

import pytest

from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2_grpc
from matcha.runtime.server import MatchaServer


@pytest.fixture(scope="session")
def classification_settings(postgres_url, state_dir) -> Callable[..., ClassificationSettings]:
    def make(**overrides) -> ClassificationSettings:
        values = {"database_url": postgres_url, "state_dir": state_dir, "listen_address": "127.0.0.1:0", **overrides}
        return ClassificationSettings(**values)

    return make


@pytest.fixture(scope="session")
async def classification_server(classification_settings, serve, local_encoder) -> AsyncIterator[MatchaServer]:
    # Watches have their own servers (test_listening_*.py): this one takes none of their windows.
    settings = classification_settings(classification_max_texts_per_call=64, classification_run_watches=False)
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield server


@pytest.fixture
def stub_for(classification_server, connect):
    def make(tenant, **kwargs) -> classification_pb2_grpc.ClassificationServiceStub:
        return classification_pb2_grpc.ClassificationServiceStub(connect(classification_server, tenant, **kwargs))

    return make


@pytest.fixture
def stub(stub_for, tenant):
    return stub_for(tenant)
