"""Page tokens, one encoding for every listing of the mesh: opaque to clients, and bound to the listing they
came from, so a token is refused by another listing (another collection, filter, name or kind) rather than
silently read as a position in it."""

import base64
import binascii
import hashlib
import json
from typing import Any

from matcha.runtime.errors import Violations

INVALID = "not a token from a previous response of this listing"


def listing_key(*parts: Any) -> str:
    """Identifies a listing by what selects its rows (JSON-able parts)."""
    canonical = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode(listing: str, position: Any) -> str:
    """The token of the page after `position` (JSON-able: the last row's key) in `listing`."""
    raw = json.dumps({"l": listing, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(violations: Violations, token: str, listing: str, *, field: str = "page_token") -> Any | None:
    """The position a token of `listing` stands for; None for an empty token (the first page). A token of
    another listing, or no token at all, is a field violation."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(value, dict) and value.get("l") == listing and value.get("p") is not None:
            return value["p"]
    except (ValueError, binascii.Error, RecursionError):
        pass
    violations.add(field, INVALID)
    return None
