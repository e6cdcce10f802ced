"""Conductor settings (`MATCHA_CONDUCTOR_*` plus the shared `MATCHA_*`)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from matcha.mesh import CONDUCTOR
from matcha.runtime.auth import WORKLOAD_PRIVATE_KEY_NAME
from matcha.runtime.governance import Clearance
from matcha.runtime.settings import DataClassName, ServiceSettings


class TargetPolicy(BaseModel):
    """What the conductor may send to one capability service (or model backend behind it)."""

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
    # {"matcha.generation.v1.GenerationService": {"clearance": "INTERNAL", "trust_boundary": "outside"}}
    conductor_targets: dict[str, TargetPolicy] = Field(default_factory=dict)
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

    def target_policy(self, service: str) -> Clearance:
        return self.conductor_targets.get(service, TargetPolicy()).as_clearance
