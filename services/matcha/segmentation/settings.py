"""Segmentation service settings (`MATCHA_SEGMENTATION_*` plus the shared `MATCHA_*`)."""

from pydantic import Field

from matcha.mesh import SEGMENTATION
from matcha.runtime.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    listen_address: str = SEGMENTATION.listen_address
    segmentation_max_customers_per_call: int = Field(10_000, ge=1)
    segmentation_max_transactions_per_call: int = Field(50_000, ge=1)
    segmentation_max_events_per_message: int = Field(1_000, ge=1)
    # Longest window a condition may count events in.
    segmentation_event_retention_days: float = Field(400.0, gt=0)
    # Events older than this when they arrive are stored but refused by the live condition counters.
    segmentation_late_tolerance_seconds: float = Field(300.0, ge=0)
    # How often expired windows are swept.
    segmentation_sweep_interval_seconds: float = Field(1.0, gt=0)
    # Several replicas: the address the others reach this one at (e.g. the pod's IP and port). Empty: one
    # replica, which counts every customer's events.
    segmentation_replica_endpoint: str = ""
    # With TLS between services: the name the replicas' certificate has (the Service's DNS name), since they
    # reach each other by pod IP.
    segmentation_replica_tls_name: str = ""
    # This replica's name among them (the pod's name); defaults to the endpoint.
    segmentation_replica_name: str = ""
    # How long a replica's slots stay its own without renewal (renewed every third of it).
    segmentation_slot_lease_seconds: float = Field(15.0, gt=0)
