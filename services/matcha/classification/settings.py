"""Classification service settings (`MATCHA_CLASSIFICATION_*` plus the shared `MATCHA_*`)."""

from pydantic import Field

from matcha.runtime.settings import ServiceSettings


class ClassificationSettings(ServiceSettings):
    listen_address: str = "[::]:50053"
    classification_device: str = "cpu"
    classification_max_batch_size: int = Field(64, ge=1, le=1024)
    classification_forward_batch_size: int = Field(32, ge=1, le=1024)
    classification_max_wait_ms: float = Field(2.0, ge=0)
    classification_max_texts_per_call: int = Field(256, ge=1)
    # Collection inputs (training, evaluation, signals) are read from this EmbeddingService (host:port), as the caller.
    classification_embedding_address: str | None = None
