"""Page tokens: one encoding, bound to the listing they came from."""

import base64
import json

import pytest

from matcha.runtime import page_tokens
from matcha.runtime.errors import InvalidArgument, Violations


def _decode(token: str, listing: str):
    violations = Violations()
    position = page_tokens.decode(violations, token, listing)
    violations.raise_if_any()
    return position


def test_a_token_returns_its_position_in_its_own_listing():
    listing = page_tokens.listing_key("documents", "reviews", {"lang": "fr"}, 2)
    assert _decode(page_tokens.encode(listing, "doc-42"), listing) == "doc-42"
    assert _decode(page_tokens.encode(listing, [3, "x"]), listing) == [3, "x"]
    assert _decode("", listing) is None


def test_the_listing_key_depends_on_every_part_and_not_on_key_order():
    assert page_tokens.listing_key("a", {"x": 1, "y": 2}) == page_tokens.listing_key("a", {"y": 2, "x": 1})
    assert page_tokens.listing_key("a", {"x": 1}) != page_tokens.listing_key("a", {"x": 2})
    assert page_tokens.listing_key("templates", "") != page_tokens.listing_key("voices", "")


@pytest.mark.parametrize(
    "token",
    [
        page_tokens.encode(page_tokens.listing_key("another listing"), "doc-42"),
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"l": "x"}).encode()).decode(),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
    ],
)
def test_tokens_of_other_listings_and_forgeries_are_field_violations(token):
    with pytest.raises(InvalidArgument) as refused:
        _decode(token, page_tokens.listing_key("documents", "reviews"))
    assert [v.field for v in refused.value.violations] == ["page_token"]
