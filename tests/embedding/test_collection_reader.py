"""The shared collection reader's own rules, before any embedding service is involved."""

import pytest

from matcha.embedding.reader import CollectionReader, CollectionSource, metadata_value
from matcha.runtime.errors import InvalidArgument, Unavailable
from matcha.runtime.governance import CallContext, DataClass, Principal

CALL = CallContext(
    principal=Principal("user-1", "acme", frozenset({"analyst"})),
    purpose="campaign",
    data_class=DataClass.INTERNAL,
    bearer_token="eyJ.secret.token",
)


def test_the_callers_token_never_shows():
    assert "secret" not in repr(CALL) and "secret" not in str(CALL)


def test_metadata_fields_are_addressed_as_filters_address_them():
    metadata = {"review": {"label": "late", "stars": 2}, "lang": "en", "empty": None}
    assert metadata_value(metadata, "review.label") == "late"
    assert metadata_value(metadata, "lang") == "en"
    assert metadata_value(metadata, "review.missing") is None
    assert metadata_value(metadata, "lang.nested") is None


async def test_without_an_address_reading_is_unavailable_and_says_which_setting():
    reader = CollectionReader(None, address_setting="MATCHA_X_EMBEDDING_ADDRESS")
    with pytest.raises(Unavailable) as refused:
        await reader.read(CALL, CollectionSource("pages"), field_path="collection", default_limit=10, max_limit=100)
    assert refused.value.reason == "EMBEDDING_NOT_CONFIGURED"
    assert refused.value.metadata == {"setting": "MATCHA_X_EMBEDDING_ADDRESS"}


async def test_bad_sources_are_refused_first_with_the_callers_field_paths():
    reader = CollectionReader(None, address_setting="MATCHA_X_EMBEDDING_ADDRESS")
    with pytest.raises(InvalidArgument) as refused:
        await reader.read(CALL, CollectionSource("", limit=101), field_path="source", default_limit=10, max_limit=100)
    assert {violation.field for violation in refused.value.violations} == {"source.collection", "source.limit"}
