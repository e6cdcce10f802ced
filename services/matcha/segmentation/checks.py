"""Limits and the field checks the segmentation cores share."""

import math
import re
from dataclasses import dataclass

from matcha.runtime.errors import Violations

SEGMENTATION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CHANNEL_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass(frozen=True)
class Limits:
    max_customers_per_call: int = 10_000
    max_transactions_per_call: int = 50_000
    max_events_per_message: int = 1_000
    max_id_chars: int = 128
    max_features: int = 64
    max_persona_chars: int = 8_000
    max_title_chars: int = 200
    max_items_per_call: int = 10_000
    max_item_name_chars: int = 500
    max_category_chars: int = 200
    # pgvector's largest `vector`.
    max_vector_dimension: int = 16_000
    max_recommendations: int = 100
    max_listed_items: int = 10_000
    max_audience_customers: int = 100_000
    progress_interval_seconds: float = 0.25
    cached_models: int = 256


def finite(value: float) -> bool:
    return math.isfinite(value)


def is_stored_text(value: str) -> bool:
    """An identifier PostgreSQL can compare: text columns cannot hold NUL."""
    return bool(value) and "\x00" not in value


def check_id(
    violations: Violations, path: str, value: str, first_seen: dict[str, int], index: int, listing: str, max_chars: int
) -> None:
    if not value:
        violations.add(path, "must not be empty")
    elif len(value) > max_chars:
        violations.add(path, f"at most {max_chars} characters")
    elif value in first_seen:
        violations.add(path, f"duplicates {listing}[{first_seen[value]}].id")
    else:
        first_seen[value] = index


def check_name(violations: Violations, path: str, name: str) -> None:
    violations.check(
        bool(SEGMENTATION_NAME.match(name)),
        path,
        "1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
    )
