"""Conductor settings (`MATCHA_CONDUCTOR_*` plus the shared `MATCHA_*`)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from matcha.mesh import CONDUCTOR
from matcha.runtime.auth import WORKLOAD_PRIVATE_KEY_NAME
from matcha.runtime.governance import Clearance
from matcha.runtime.settings import DataClassName, ServiceSettings


class TargetPolicy(BaseModel):
    """The operator's override of what the conductor may send one capability service: it lowers what the service
    reports about itself (`matcha.conductor.capabilities`), never raises it."""

    clearance: DataClassName = "PERSONAL"
    trust_boundary: Literal["inside", "outside"] = "inside"

    @model_validator(mode="after")
    def _clearance_within_boundary(self) -> "TargetPolicy":
        self.as_clearance  # noqa: B018 (raises on a clearance the boundary does not allow)
        return self

    @property
    def as_clearance(self) -> Clearance:
        return Clearance.configured(self.clearance, self.trust_boundary)


class ConductorSettings(ServiceSettings):
    listen_address: str = CONDUCTOR.listen_address
    # {"matcha.embedding.v1.EmbeddingService": "127.0.0.1:50052", ...}
    conductor_endpoints: dict[str, str] = Field(default_factory=dict)
    # {"matcha.generation.v1.GenerationService": {"clearance": "INTERNAL", "trust_boundary": "outside"}}: only
    # needed to send a service less than it accepts; each service reports its own clearance.
    conductor_targets: dict[str, TargetPolicy] = Field(default_factory=dict)
    conductor_clearance_refresh_seconds: float = Field(
        60.0, gt=0, description="how old a service's report of its clearance may get before the next hop asks again"
    )
    conductor_secret_file: Path | None = Field(
        None, description="key of the audit chain and of pseudonym mappings at rest; defaults to the state dir's"
    )
    conductor_workload_key_file: Path | None = Field(
        None,
        description="Ed25519 private key signing the conductor's per-hop workload tokens (PEM); its public keys are "
        "beside it with the suffix .pub; defaults to the state dir's",
    )
    # How long one hop's workload token lives (verifiers refuse more than their workload maximum lifetime).
    conductor_workload_token_seconds: float = Field(300.0, gt=0, le=3600)
    conductor_lease_seconds: float = Field(15.0, gt=0)
    conductor_poll_seconds: float = Field(2.0, gt=0)
    conductor_max_active_runs: int = Field(256, ge=1)
    # Bounded work: items one for_each may fan out over; plan expressions' cost (elements their comprehensions
    # may visit) above which they are refused unrun, and the time after which a costly one is stopped.
    conductor_max_fan_out_items: int = Field(10_000, ge=1)
    conductor_expression_max_cost: int = Field(50_000_000, ge=1)
    conductor_expression_timeout_seconds: float = Field(2.0, gt=0)

    @property
    def secret_path(self) -> Path:
        return self.conductor_secret_file or self.state_dir / "keys" / "conductor-secret.key"

    @property
    def workload_key_path(self) -> Path:
        return self.conductor_workload_key_file or self.state_dir / "keys" / WORKLOAD_PRIVATE_KEY_NAME

    @property
    def target_overrides(self) -> dict[str, Clearance]:
        return {service: policy.as_clearance for service, policy in self.conductor_targets.items()}
