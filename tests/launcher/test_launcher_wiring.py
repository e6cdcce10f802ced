"""The one address map `matcha up` gives every process: who reads collections from which embedding service."""

from matcha.launcher.supervisor import SERVICES, Stack
from matcha.runtime.auth import ensure_signing_keys


def wiring_of(state_dir, services=SERVICES, port_offset=0) -> dict[str, str]:
    stack = Stack(state_dir, services=services, port_offset=port_offset)
    stack.keys = ensure_signing_keys(state_dir / "keys")
    return stack._wiring()


def test_generation_and_classification_read_collections_from_the_stacks_embedding_service(tmp_path):
    wiring = wiring_of(tmp_path, port_offset=1000)
    assert wiring["MATCHA_GENERATION_EMBEDDING_ADDRESS"] == "127.0.0.1:51052"
    assert wiring["MATCHA_CLASSIFICATION_EMBEDDING_ADDRESS"] == "127.0.0.1:51052"


def test_a_stack_without_embedding_leaves_collection_inputs_unconfigured(tmp_path):
    services = tuple(spec for spec in SERVICES if spec.name != "embedding")
    wiring = wiring_of(tmp_path, services=services)
    assert wiring["MATCHA_GENERATION_EMBEDDING_ADDRESS"] == ""
    assert wiring["MATCHA_CLASSIFICATION_EMBEDDING_ADDRESS"] == ""
