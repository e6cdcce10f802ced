"""The services of the mesh, named once: each one's package, default port and gRPC service. Settings take
their default listener from here, the launcher its start order and wiring, the CLI its default targets, the
conductor the contracts plans may call. Adding a service is one row here plus its folders (docs/developing.md);
its clearance it reports itself (matcha.runtime.v1.RuntimeService)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port: int
    # The gRPC service it serves (what other services' address maps name); None for the HTTP gateway.
    grpc_service: str | None = None

    @property
    def contract_module(self) -> str:
        """The generated module of its contract, protos/matcha/<name>/v1/<name>.proto."""
        return f"{self.module}.v1.{self.name}_pb2"

    @property
    def listen_address(self) -> str:
        return f"[::]:{self.port}"

    @property
    def local_address(self) -> str:
        """Where `matcha up` serves it (port offset aside)."""
        return f"127.0.0.1:{self.port}"


CONDUCTOR = ServiceSpec("conductor", "matcha.conductor", 50051, "matcha.conductor.v1.ConductorService")
EMBEDDING = ServiceSpec("embedding", "matcha.embedding", 50052, "matcha.embedding.v1.EmbeddingService")
CLASSIFICATION = ServiceSpec(
    "classification", "matcha.classification", 50053, "matcha.classification.v1.ClassificationService"
)
GENERATION = ServiceSpec("generation", "matcha.generation", 50054, "matcha.generation.v1.GenerationService")
SEGMENTATION = ServiceSpec("segmentation", "matcha.segmentation", 50055, "matcha.segmentation.v1.SegmentationService")
REVIEW = ServiceSpec("review", "matcha.review", 50056, "matcha.review.v1.ReviewService")
GATEWAY = ServiceSpec("gateway", "matcha.gateway", 8080)

# Start order: the embedding service first (others read collections from it), the gateway last.
SERVICES = (EMBEDDING, CONDUCTOR, CLASSIFICATION, GENERATION, SEGMENTATION, REVIEW, GATEWAY)
# The services the conductor's plans may call: every gRPC service but the conductor's own.
CAPABILITIES = tuple(spec for spec in SERVICES if spec.grpc_service and spec != CONDUCTOR)
