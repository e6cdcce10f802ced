"""Embedding service settings (`MATCHA_EMBEDDING_*` plus the shared `MATCHA_*`)."""

from typing import Literal

from pydantic import Field, model_validator

from matcha.mesh import EMBEDDING
from matcha.runtime.settings import ServiceSettings


class EmbeddingSettings(ServiceSettings):
    listen_address: str = EMBEDDING.listen_address
    embedding_backend: Literal["local", "tei"] = "local"
    embedding_tei_url: str | None = Field(None, description="base URL of a text-embeddings-inference server")
    embedding_device: str = "cpu"
    embedding_max_batch_size: int = Field(64, ge=1, le=1024)
    embedding_forward_batch_size: int = Field(32, ge=1, le=1024)
    embedding_max_wait_ms: float = Field(2.0, ge=0)
    embedding_max_items_per_call: int = Field(256, ge=1)
    embedding_max_text_chars: int = Field(8192, ge=1)

    @model_validator(mode="after")
    def _tei_needs_url(self) -> "EmbeddingSettings":
        if self.embedding_backend == "tei" and not self.embedding_tei_url:
            raise ValueError("MATCHA_EMBEDDING_TEI_URL is required when MATCHA_EMBEDDING_BACKEND=tei")
        return self
