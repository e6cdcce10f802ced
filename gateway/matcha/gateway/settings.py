"""Gateway settings (`MATCHA_*` like every process, `MATCHA_GATEWAY_*` for its own)."""

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from matcha.mesh import GATEWAY
from matcha.runtime.auth import MAX_TOKEN_LIFETIME_SECONDS, PUBLIC_KEY_NAME
from matcha.runtime.settings import TransportSettings


class GatewaySettings(TransportSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHA_", extra="ignore")

    state_dir: Path = Field(Path(".state"), description="local state: keys")
    auth_public_key_file: Path | None = Field(
        None, description="PEM Ed25519 keys verifying bearer tokens; defaults to the state dir's key"
    )
    auth_max_token_lifetime_seconds: float = Field(MAX_TOKEN_LIFETIME_SECONDS, gt=0)
    listen_address: str = Field(GATEWAY.listen_address, description="host:port of the HTTP listener")
    log_level: str = "INFO"
    grace_period_seconds: float = Field(10.0, ge=0)
    gateway_backends: dict[str, str] = Field(
        description='JSON object: full gRPC service name -> host:port, e.g. {"matcha.embedding.v1.EmbeddingService": '
        '"127.0.0.1:50052"}; routes of services not listed answer 503'
    )
    gateway_cors_origins: list[str] = Field(
        default_factory=list, description='JSON list of origins allowed by CORS, e.g. ["https://app.example"]'
    )
    gateway_max_body_bytes: int = Field(8 * 1024 * 1024, ge=1)
    gateway_call_timeout_seconds: float = Field(60.0, gt=0, description="deadline of unary calls")
    gateway_readiness_timeout_seconds: float = Field(2.0, gt=0)
    gateway_critical_backends: list[str] = Field(
        default_factory=list,
        description="JSON list of backend service names whose health gates /readyz; the others are reported "
        "there but a pod stays ready without them (their routes answer 503 meanwhile)",
    )
    gateway_stream_start_wait_seconds: float = Field(
        0.5,
        ge=0,
        description="how long a streaming call may take to fail before the response starts; "
        "an early failure gets its HTTP status, a later one is sent in the stream",
    )

    @model_validator(mode="after")
    def _check_critical_backends(self) -> "GatewaySettings":
        unknown = sorted(set(self.gateway_critical_backends) - set(self.gateway_backends))
        if unknown:
            raise ValueError(f"MATCHA_GATEWAY_CRITICAL_BACKENDS names services without a backend: {', '.join(unknown)}")
        return self

    @property
    def public_key_path(self) -> Path:
        return self.auth_public_key_file or self.state_dir / "keys" / PUBLIC_KEY_NAME

    @property
    def host_and_port(self) -> tuple[str, int]:
        host, _, port = self.listen_address.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)
