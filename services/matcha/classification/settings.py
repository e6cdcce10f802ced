"""Classification service settings (`MATCHA_CLASSIFICATION_*` plus the shared `MATCHA_*`)."""

from pydantic import Field

from matcha.mesh import CLASSIFICATION
from matcha.runtime.settings import ServiceSettings


class ClassificationSettings(ServiceSettings):
    listen_address: str = CLASSIFICATION.listen_address
    classification_device: str = "cpu"
    classification_max_batch_size: int = Field(64, ge=1, le=1024)
    classification_forward_batch_size: int = Field(32, ge=1, le=1024)
    classification_max_wait_ms: float = Field(2.0, ge=0)
    classification_max_texts_per_call: int = Field(256, ge=1)
    # Collection inputs (training, evaluation, signals) are read from this EmbeddingService (host:port), as the caller.
    classification_embedding_address: str | None = None
    # Listening watches: drop folders must lie under one of these folders (comma-separated absolute paths).
    classification_drop_folder_roots: str = ""
    # One replica owns a watch; another takes it over this long after the owner stopped renewing.
    classification_watch_lease_seconds: float = Field(15.0, gt=0)
    # Feeds and webhooks reach public addresses only, and these networks besides (comma-separated addresses or
    # CIDR networks, e.g. an on-premises feed server's): a watch cannot make the service call inside the cluster.
    classification_egress_allowed_networks: str = ""
    # Alert webhooks: attempts in all, first retry delay (doubling), time allowed per attempt.
    classification_webhook_attempts: int = Field(6, ge=1, le=30)
    classification_webhook_backoff_seconds: float = Field(1.0, gt=0)
    classification_webhook_timeout_seconds: float = Field(5.0, gt=0)
    # An alert stream also reads the store this often, in case a notification was lost.
    classification_alert_poll_seconds: float = Field(5.0, gt=0)
    # Start the watch scheduler (off for a replica meant only to answer calls).
    classification_run_watches: bool = True
