"""The personal-data detector and the pseudonymiser, on checksums, near misses and a labelled corpus."""

import collections

import pytest

from matcha.conductor.redaction import Pseudonymiser, detect, iban_valid, luhn_valid, rehydrate
from tests.conductor.pii_corpus import build_corpus


def score(examples):
    """Precision and recall over (kind, value) pairs, per kind and overall."""
    counts = collections.defaultdict(collections.Counter)
    for example in examples:
        expected = collections.Counter(example.labels)
        found = collections.Counter((finding.kind, finding.value) for finding in detect(example.text))
        for (kind, _), count in (expected & found).items():
            counts[kind]["tp"] += count
        for (kind, _), count in (found - expected).items():
            counts[kind]["fp"] += count
        for (kind, _), count in (expected - found).items():
            counts[kind]["fn"] += count
    total = sum(counts.values(), collections.Counter())
    return counts, total["tp"] / (total["tp"] + total["fp"]), total["tp"] / (total["tp"] + total["fn"])


def test_detector_meets_its_targets_on_the_labelled_corpus():
    corpus = build_corpus()
    assert len(corpus) >= 200
    assert sum(1 for example in corpus if not example.labels) >= 50  # near misses only
    per_kind, precision, recall = score(corpus)
    assert recall >= 0.95 and precision >= 0.9, (precision, recall, dict(per_kind))
    assert set(per_kind) == {"EMAIL", "PHONE", "IBAN", "PAYMENT_CARD", "FR_NIR", "IP_ADDRESS", "URL_TOKEN"}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("IBAN FR76 3000 6000 0112 3456 7890 189", "IBAN"),
        ("card 4111 1111 1111 1111", "PAYMENT_CARD"),
        ("card 3782-822463-10005", "PAYMENT_CARD"),
        ("NIR 2 84 12 75 112 041 56", "FR_NIR"),
        ("from 10.0.12.7", "IP_ADDRESS"),
        ("call +33 6 12 34 56 78", "PHONE"),
        ("call 01.45.67.89.10", "PHONE"),
        ("https://example.com/reset?token=abc123XYZ", "URL_TOKEN"),
    ],
)
def test_each_kind_is_detected(text, kind):
    assert [finding.kind for finding in detect(text)] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "IBAN FR77 3000 6000 0112 3456 7890 189",  # wrong check digits
        "card 4111 1111 1111 1112",  # fails Luhn
        "NIR 2 84 12 75 112 041 26",  # wrong key
        "version 300.1.2.3 released",  # not an IP
        "order CMD-2024-000123 on 2024-03-15 at 10:30:00",
        "https://shop.example.com/dress?utm_source=newsletter",
    ],
)
def test_near_misses_are_left_alone(text):
    assert detect(text) == []


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_pseudonyms_are_stable_per_key_and_reversible():
    text = "Write to ana@example.org or ana@example.org, call +33 6 11 22 33 44."
    first = Pseudonymiser(b"run-a").redact({"messages": [{"content": text, "role": "user"}]}, ["EMAIL", "PHONE"])
    redacted = first.value["messages"][0]["content"]
    assert "ana@example.org" not in redacted and redacted.count(next(iter(first.mapping))) in (1, 2)
    assert first.counts == {"EMAIL": 2, "PHONE": 1} and len(first.mapping) == 2
    assert rehydrate(first.value, first.mapping)["messages"][0]["content"] == text
    again = Pseudonymiser(b"run-a").redact(text, ["EMAIL"])
    other_run = Pseudonymiser(b"run-b").redact(text, ["EMAIL"])
    assert again.mapping.keys() <= first.mapping.keys() and not other_run.mapping.keys() & first.mapping.keys()


def test_only_the_selected_fields_are_scanned():
    request = {"texts": ["mail bob@example.com"], "collection": "bob@example.com"}
    result = Pseudonymiser(b"k").redact(request, ["EMAIL"], fields=("texts",))
    assert result.value["collection"] == "bob@example.com" and "bob@" not in result.value["texts"][0]
