"""`python -m matcha.embedding`: the embedding service process."""

from matcha.embedding.app import build_embedding_service
from matcha.embedding.settings import EmbeddingSettings
from matcha.runtime.main import run_service

if __name__ == "__main__":
    run_service("embedding", EmbeddingSettings, build_embedding_service)
