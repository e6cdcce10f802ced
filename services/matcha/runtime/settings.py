"""Settings shared by every service, read once by each process's composition root."""

from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from matcha.runtime.auth import (
    MAX_TOKEN_LIFETIME_SECONDS,
    MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS,
    PUBLIC_KEY_NAME,
    WORKLOAD_PUBLIC_KEY_NAME,
)
from matcha.runtime.channels import Transport
from matcha.runtime.governance import Clearance
from matcha.runtime.limits import TenantLimits

S = TypeVar("S", bound=BaseSettings)
DataClassName = Literal["PUBLIC", "INTERNAL", "CONFIDENTIAL", "PERSONAL"]


class TransportSettings(BaseSettings):
    """How this process reaches other services: TLS (the same three `MATCHA_TLS_*` variables for every process,
    deploy/README.md) and how calls spread over a service's pods."""

    model_config = SettingsConfigDict(env_prefix="MATCHA_", extra="ignore")

    tls_ca_file: Path | None = Field(
        None, description="certificate authority: calls to other services use TLS and verify them by it"
    )
    tls_cert_file: Path | None = Field(
        None,
        description="this service's certificate (with MATCHA_TLS_KEY_FILE): it serves TLS, requires clients' "
        "certificates when MATCHA_TLS_CA_FILE is set too, and presents it when calling other services",
    )
    tls_key_file: Path | None = Field(None, description="private key of MATCHA_TLS_CERT_FILE")
    client_load_balancing: Literal["pick_first", "round_robin"] = Field(
        "pick_first",
        description="how calls to another service spread over the addresses its name resolves to: round_robin "
        "over a headless Service's pods (the Kubernetes manifests), pick_first for one address",
    )

    @model_validator(mode="after")
    def _certificate_with_its_key(self) -> "TransportSettings":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("MATCHA_TLS_CERT_FILE and MATCHA_TLS_KEY_FILE are set together or not at all")
        return self

    @property
    def transport(self) -> Transport:
        """How this process serves and calls: read from the TLS files (TransportError when one is unreadable)."""
        return Transport.from_files(
            ca=self.tls_ca_file,
            certificate=self.tls_cert_file,
            key=self.tls_key_file,
            load_balancing=self.client_load_balancing,
        )


class ServiceSettings(TransportSettings):
    """`MATCHA_*` environment variables; tracing uses the standard `OTEL_*` ones."""

    model_config = SettingsConfigDict(env_prefix="MATCHA_", extra="ignore")

    database_url: str = Field(
        description="PostgreSQL DSN of the services' queries (the launcher sets it for the embedded server); may "
        "go through a transaction-pooling PgBouncer, see MATCHA_DATABASE_TRANSACTION_POOLER"
    )
    database_session_url: str | None = Field(
        None,
        description="PostgreSQL DSN reaching the server directly, for work that needs a session of its own "
        "(LISTEN for notifications); unset: MATCHA_DATABASE_URL",
    )
    database_transaction_pooler: bool = Field(
        False,
        description="MATCHA_DATABASE_URL goes through a pooler in transaction mode (PgBouncer): no named prepared "
        "statements nor session settings on it; MATCHA_DATABASE_SESSION_URL is then required",
    )
    state_dir: Path = Field(Path(".state"), description="local state: keys, embedded database")
    listen_address: str = "[::]:50051"
    auth_public_key_file: Path | None = Field(
        None, description="PEM Ed25519 keys verifying bearer tokens; defaults to the state dir's key"
    )
    auth_max_token_lifetime_seconds: float = Field(MAX_TOKEN_LIFETIME_SECONDS, gt=0)
    auth_workload_public_key_file: Path | None = Field(
        None,
        description="PEM Ed25519 keys verifying the conductor's workload tokens (runs' hops); defaults to the state "
        "dir's, read again when a token names a key not seen yet",
    )
    auth_workload_max_token_lifetime_seconds: float = Field(MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS, gt=0)
    clearance: DataClassName = "PERSONAL"
    trust_boundary: Literal["inside", "outside"] = "inside"
    grace_period_seconds: float = Field(10.0, ge=0)
    shutdown_drain_seconds: float = Field(1.0, ge=0, description="NOT_SERVING before the port closes")
    log_level: str = "INFO"
    database_pool_size: int = Field(
        10,
        ge=1,
        description="connections of the service's pool; the access ledger's pool has 2 more (deploy/README.md)",
    )
    audit_key_file: Path | None = Field(
        None,
        description="HMAC key of the access ledger every service appends to (64 hex characters); defaults to the "
        "state dir's, created there when the database is on this machine",
    )

    # Per tenant and per process (each service reads its own): 0 turns a limit off.
    tenant_calls_per_second: float = Field(0.0, ge=0, description="steady call rate a tenant may keep")
    tenant_burst: int = Field(0, ge=0, description="calls a tenant may make at once; 0: one second's worth")
    tenant_max_concurrent_calls: int = Field(0, ge=0, description="calls of one tenant in progress at once")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="calls in progress at once, every tenant together; unset: no limit"
    )
    health_listen_address: str | None = Field(
        None,
        description="host:port serving the gRPC health service alone, in plaintext: for kubelet probes, "
        "which cannot speak TLS; unset: health is served on the main port only",
    )

    @model_validator(mode="after")
    def _session_url_beside_a_pooler(self) -> "ServiceSettings":
        if self.database_transaction_pooler and not self.database_session_url:
            raise ValueError(
                "MATCHA_DATABASE_TRANSACTION_POOLER needs MATCHA_DATABASE_SESSION_URL: LISTEN cannot go through "
                "a transaction pooler"
            )
        return self

    @model_validator(mode="after")
    def _clearance_within_boundary(self) -> "ServiceSettings":
        self.service_clearance  # noqa: B018 (raises on a clearance the boundary does not allow)
        return self

    @property
    def public_key_path(self) -> Path:
        return self.auth_public_key_file or self.state_dir / "keys" / PUBLIC_KEY_NAME

    @property
    def workload_public_key_path(self) -> Path:
        return self.auth_workload_public_key_file or self.state_dir / "keys" / WORKLOAD_PUBLIC_KEY_NAME

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.state_dir / "keys" / "access-ledger.key"

    @property
    def database_is_local(self) -> bool:
        """Whether the database is on this machine (the embedded server's socket, localhost): only then may a
        process make up a shared secret; processes sharing a database over the network must be given theirs."""
        parts = urlsplit(self.database_url)
        socket_dirs = parse_qs(parts.query).get("host", [])
        return (parts.hostname or "") in ("", "localhost", "127.0.0.1", "::1") or any(
            directory.startswith("/") for directory in socket_dirs
        )

    @property
    def tenant_limits(self) -> TenantLimits | None:
        if not (self.tenant_calls_per_second or self.tenant_max_concurrent_calls):
            return None
        return TenantLimits(self.tenant_calls_per_second, self.tenant_burst, self.tenant_max_concurrent_calls)

    @property
    def service_clearance(self) -> Clearance:
        return Clearance.configured(self.clearance, self.trust_boundary)


def load_settings(settings_type: type[S]) -> S:
    """Reads settings or exits with a message naming each missing or bad variable."""
    try:
        return settings_type()
    except SettingsError as error:  # e.g. a JSON-valued variable that is not JSON
        raise SystemExit(f"invalid configuration:\n  {error}") from None
    except ValidationError as error:
        prefix = settings_type.model_config.get("env_prefix", "")
        lines = [
            # Cross-field checks have no location: their message names the variables itself.
            f"  {prefix}{'_'.join(str(part) for part in issue['loc']).upper()}: {issue['msg']}"
            if issue["loc"]
            else f"  {issue['msg'].removeprefix('Value error, ')}"
            for issue in error.errors()
        ]
        raise SystemExit("invalid configuration:\n" + "\n".join(lines)) from None
