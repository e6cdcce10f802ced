"""Segmentation service settings (`MATCHA_SEGMENTATION_*` plus the shared `MATCHA_*`)."""

from pydantic import Field

from matcha.runtime.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    listen_address: str = "[::]:50055"
    segmentation_max_customers_per_call: int = Field(10_000, ge=1)
    segmentation_max_transactions_per_call: int = Field(50_000, ge=1)
    segmentation_max_events_per_message: int = Field(1_000, ge=1)
