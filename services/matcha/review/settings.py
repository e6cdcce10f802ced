"""Review service settings (`MATCHA_REVIEW_*` plus the shared `MATCHA_*`)."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, model_validator

from matcha.mesh import REVIEW
from matcha.review.attestation import PUBLIC_KEY_NAME
from matcha.review.audiences import FrequencyCap
from matcha.runtime.settings import ServiceSettings


class ReviewSettings(ServiceSettings):
    listen_address: str = REVIEW.listen_address
    review_conductor_address: str | None = Field(
        None, description="host:port of ConductorService; runs are signalled only when set"
    )
    review_segmentation_address: str | None = Field(
        None,
        description="host:port of SegmentationService; outcome clicks and conversions are fed to it as "
        "behaviour events only when set (until then they wait, stored), and publications naming an audience are "
        "refused without it",
    )
    review_outcome_feed_batch_size: int = Field(1000, ge=1, le=1000)
    review_outcome_feed_poll_seconds: float = Field(1.0, gt=0)
    review_service_tokens_dir: Path | None = Field(
        None,
        description="directory of bearer tokens the service calls the conductor and segmentation with, one "
        "`<tenant>.jwt` per "
        "tenant (re-read on each attempt, so tokens rotate without a restart); defaults to the state dir's "
        "tokens/review",
    )
    # Due time of an item submitted without one, per priority.
    review_sla_urgent_hours: float = Field(4, gt=0)
    review_sla_high_hours: float = Field(24, gt=0)
    review_sla_normal_hours: float = Field(72, gt=0)
    review_sla_low_hours: float = Field(168, gt=0)
    review_max_content_bytes: int = Field(256 * 1024, ge=1)
    review_publish_dir: Path | None = Field(None, description="file sink: approved items are written here as JSON")
    review_webhook_url: str | None = Field(None, description="HTTP sink: approved items are POSTed here as JSON")
    review_webhook_timeout_seconds: float = Field(10.0, gt=0)
    review_delivery_max_age_hours: float = Field(
        168.0,
        gt=0,
        description="how long a failing delivery is retried before it is FAILED (Redeliver queues it again); the "
        "default is the longest run deadline, and the conductor refuses a signal to a run past its own deadline",
    )
    review_delivery_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="how long a replica holds a delivery it attempts; longer than an attempt (the delivery and "
        "webhook timeouts), or another replica attempts it too",
    )
    review_delivery_initial_backoff_seconds: float = Field(1.0, gt=0)
    review_delivery_max_backoff_seconds: float = Field(300.0, gt=0)
    review_delivery_poll_seconds: float = Field(5.0, gt=0)
    review_delivery_timeout_seconds: float = Field(10.0, gt=0)
    review_sweep_seconds: float = Field(30.0, gt=0)
    review_attestation_public_key_file: Path | None = Field(
        None,
        description="Ed25519 public key that verifies the generation service's quality attestations; "
        "defaults to the state dir's keys/generation-attestation.pub",
    )
    review_frequency_cap_messages: int = Field(
        2,
        ge=0,
        description="publications one customer may receive on one channel within the window; 0 lifts the cap",
    )
    review_frequency_cap_days: float = Field(7.0, gt=0, description="window of the frequency cap, in days")
    review_frequency_caps: dict[str, tuple[int, float]] = Field(
        default_factory=dict,
        description='per channel, (messages, days) replacing the default cap, e.g. {"sms": [1, 7]}',
    )
    review_audience_timeout_seconds: float = Field(
        300.0, gt=0, description="deadline of reading one publication's audience from segmentation"
    )
    review_four_eyes_off_tenants: list[str] = Field(
        default_factory=list,
        description="tenants whose policy lets one person review alone; four-eyes holds for every other tenant",
    )

    @model_validator(mode="after")
    def _lease_outlives_an_attempt(self) -> "ReviewSettings":
        attempt = max(self.review_delivery_timeout_seconds, self.review_webhook_timeout_seconds)
        if self.review_delivery_lease_seconds <= attempt:
            raise ValueError(
                f"MATCHA_REVIEW_DELIVERY_LEASE_SECONDS ({self.review_delivery_lease_seconds:g}) must exceed the "
                f"longest delivery attempt ({attempt:g} s, the delivery and webhook timeouts)"
            )
        return self

    @property
    def attestation_public_key_file(self) -> Path:
        return self.review_attestation_public_key_file or self.state_dir / "keys" / PUBLIC_KEY_NAME

    def frequency_cap(self, channel: str) -> FrequencyCap:
        """The cap on `channel` (lowercase, as opt-outs name it)."""
        messages, days = self.review_frequency_caps.get(
            channel, (self.review_frequency_cap_messages, self.review_frequency_cap_days)
        )
        return FrequencyCap(messages, timedelta(days=days))

    @property
    def tokens_dir(self) -> Path:
        return self.review_service_tokens_dir or self.state_dir / "tokens" / "review"

    @property
    def sla_hours(self) -> dict[int, float]:
        """By priority number (LOW 1 .. URGENT 4)."""
        return {
            1: self.review_sla_low_hours,
            2: self.review_sla_normal_hours,
            3: self.review_sla_high_hours,
            4: self.review_sla_urgent_hours,
        }
