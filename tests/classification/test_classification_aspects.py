"""Aspect-level sentiment through the real service: contrast in English and French, evidence offsets, refusals."""

import asyncio
import json

import pytest
from click.testing import CliRunner

from matcha.classification.app import build_classification_service
from matcha.classification.sentiment import ENGLISH_MODEL_ID, FRENCH_MODEL_ID
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.cli.classify import classify as classify_command
from matcha.cli.classify import load_aspects
from tests.support import refused

ASPECTS = pb.ClassificationTask(
    aspects=pb.AspectsTask(
        aspects=[
            pb.Aspect(label="taste", terms=["coffee", "flavour", "café", "goût"]),
            pb.Aspect(label="delivery", terms=["parcel", "courier", "livraison", "colis"]),
            pb.Aspect(label="price", terms=["expensive", "cheap", "prix"]),
        ]
    )
)


def by_aspect(result: pb.TextClassification) -> dict[str, pb.AspectSentiment]:
    return {found.aspect: found for found in result.aspects.aspects}


def evidence(text: str, found: pb.AspectSentiment) -> list[str]:
    return [text[span.start : span.end] for span in found.evidence]


async def classify(stub, texts, *tasks, language=""):
    return await stub.Classify(pb.ClassifyRequest(texts=texts, tasks=list(tasks), language=language))


async def test_english_contrast_gives_each_aspect_its_own_clause(stub):
    texts = [
        "The coffee is great but delivery was slow and the parcel arrived damaged.",
        "Although the courier was friendly and quick, the coffee tasted awful.",
    ]
    reply = await classify(stub, texts, ASPECTS)
    first, second = (by_aspect(result) for result in reply.results)
    assert set(first) == {"taste", "delivery"}
    assert first["taste"].label == pb.SENTIMENT_POSITIVE
    assert first["delivery"].label == pb.SENTIMENT_NEGATIVE
    assert evidence(texts[0], first["taste"]) == ["The coffee is great"]
    assert evidence(texts[0], first["delivery"]) == ["delivery was slow and the parcel arrived damaged"]
    assert set(second) == {"taste", "delivery"}
    assert second["delivery"].label == pb.SENTIMENT_POSITIVE
    assert second["taste"].label == pb.SENTIMENT_NEGATIVE
    assert evidence(texts[1], second["taste"]) == ["the coffee tasted awful"]
    # The whole text's sentiment would give both aspects one polarity: here they differ.
    for found in (*first.values(), *second.values()):
        assert found.negative + found.neutral + found.positive == pytest.approx(1.0, abs=1e-4)
        assert found.model.id == ENGLISH_MODEL_ID
    assert ENGLISH_MODEL_ID in {model.id for model in reply.models}


async def test_french_contrast_mais_and_par_contre(stub):
    texts = [
        "Le café est excellent, vraiment délicieux, mais la livraison était décevante et le colis endommagé.",
        "La livraison est parfaite, merci ! Par contre le goût est décevant.",
    ]
    reply = await classify(stub, texts, ASPECTS)
    first, second = (by_aspect(result) for result in reply.results)
    assert [result.language for result in reply.results] == ["fr", "fr"]
    assert first["taste"].label == pb.SENTIMENT_POSITIVE
    assert first["delivery"].label == pb.SENTIMENT_NEGATIVE
    assert evidence(texts[0], first["delivery"]) == ["la livraison était décevante et le colis endommagé"]
    assert second["delivery"].label == pb.SENTIMENT_POSITIVE
    assert second["taste"].label == pb.SENTIMENT_NEGATIVE
    assert evidence(texts[1], second["taste"]) == ["le goût est décevant"]
    assert {found.model.id for found in (*first.values(), *second.values())} == {FRENCH_MODEL_ID}


class RecordingEncoder:
    """The session's MiniLM, remembering every text it was asked to embed."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.texts: list[str] = []

    @property
    def info(self):
        return self._encoder.info

    async def load(self) -> None:
        pass

    async def encode(self, texts: list[str]):
        self.texts.extend(texts)
        return await self._encoder.encode(texts)

    async def close(self) -> None:
        pass


async def test_french_clauses_are_scored_without_being_embedded(classification_settings, serve, local_encoder, connect):
    recorder = RecordingEncoder(local_encoder)
    settings = classification_settings(classification_run_watches=False)
    english = "The coffee is great but the parcel arrived damaged."
    french = "Le café est excellent, mais la livraison était décevante."
    async with serve(build_classification_service(settings, encoder=recorder), settings) as server:
        stub = classification_pb2_grpc.ClassificationServiceStub(connect(server, "aspects-embedding"))
        reply = await classify(stub, [english, french], ASPECTS)
    assert {found.aspect for result in reply.results for found in result.aspects.aspects} == {"taste", "delivery"}
    # The English head reads the English clauses' embeddings; the French lexicon reads none.
    assert recorder.texts[2:] == ["The coffee is great", "the parcel arrived damaged"]
    assert [text for text in recorder.texts if "livraison" in text or "café" in text] == [french]


async def test_aspects_not_mentioned_are_absent_and_offsets_point_at_the_clause(stub):
    texts = [
        "Lovely shop, friendly staff.",
        "Way too expensive for what it is. Still, I love the flavour. The coffee smells amazing!",
    ]
    reply = await classify(stub, texts, ASPECTS)
    assert list(reply.results[0].aspects.aspects) == []
    assert reply.results[0].HasField("aspects")
    found = by_aspect(reply.results[1])
    # Task order, not text order; delivery is never mentioned.
    assert [item.aspect for item in reply.results[1].aspects.aspects] == ["taste", "price"]
    assert evidence(texts[1], found["price"]) == ["Way too expensive for what it is"]
    assert found["price"].label == pb.SENTIMENT_NEGATIVE
    # Two clauses of the same aspect, both kept as evidence, in text order; one clause naming an aspect twice
    # is one piece of evidence.
    assert evidence(texts[1], found["taste"]) == ["Still, I love the flavour", "The coffee smells amazing"]
    assert found["taste"].label == pb.SENTIMENT_POSITIVE
    reply = await classify(stub, ["I love the flavour, and the coffee smells amazing!"], ASPECTS)
    assert [len(found.evidence) for found in reply.results[0].aspects.aspects] == [1]


async def test_no_turn_in_nothing_but_and_not_only_but_also(stub):
    texts = [
        "Not only the coffee but also the courier was perfect.",
        "Non seulement le café mais aussi la livraison étaient parfaits.",
        "Nothing but praise for the coffee.",
    ]
    reply = await classify(stub, texts, ASPECTS)
    for text, result in zip(texts[:2], reply.results, strict=False):
        found = by_aspect(result)
        assert evidence(text, found["taste"]) == evidence(text, found["delivery"]) == [text.rstrip(".")]
        assert found["taste"].label == found["delivery"].label == pb.SENTIMENT_POSITIVE
    assert evidence(texts[2], by_aspect(reply.results[2])["taste"]) == ["Nothing but praise for the coffee"]


async def test_terms_match_whole_words_any_case_and_plurals(stub):
    task = pb.ClassificationTask(aspects=pb.AspectsTask(aspects=[pb.Aspect(label="price", terms=["cost"])]))
    texts = ["PRICES went up again, terrible.", "The costume was nice.", "Great value, the costs are low."]
    reply = await classify(stub, texts, task)
    assert [item.aspect for item in reply.results[0].aspects.aspects] == ["price"]
    assert reply.results[0].aspects.aspects[0].label == pb.SENTIMENT_NEGATIVE
    assert list(reply.results[1].aspects.aspects) == []
    assert [item.aspect for item in reply.results[2].aspects.aspects] == ["price"]


async def test_aspects_alongside_sentiment(stub):
    sentiment = pb.ClassificationTask(sentiment=pb.SentimentTask())
    reply = await classify(stub, ["The coffee is great but delivery was slow."], sentiment, ASPECTS)
    result = reply.results[0]
    assert result.HasField("sentiment")
    assert {found.aspect for found in result.aspects.aspects} == {"taste", "delivery"}


async def test_bad_aspect_tasks_are_refused_with_field_violations(stub):
    def task(*aspects):
        return pb.ClassificationTask(aspects=pb.AspectsTask(aspects=list(aspects)))

    details = await refused(classify(stub, ["fine"], task()))
    assert details.field_violations == {"tasks[0].aspects.aspects": "1 to 50 aspects"}
    too_many = [pb.Aspect(label=f"aspect{index}") for index in range(51)]
    details = await refused(classify(stub, ["fine"], task(*too_many)))
    assert details.field_violations == {"tasks[0].aspects.aspects": "1 to 50 aspects"}
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label="price"), pb.Aspect(label="Price"))))
    assert details.field_violations == {"tasks[0].aspects.aspects[1].label": "duplicate aspect 'Price'"}
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label=" ", terms=["cost"]))))
    assert details.field_violations == {"tasks[0].aspects.aspects[0].label": "must not be empty"}
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label="price", terms=["cost", ""]))))
    assert details.field_violations == {"tasks[0].aspects.aspects[0].terms[1]": "must not be empty"}
    terms = [f"term{index}" for index in range(51)]
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label="price", terms=terms))))
    assert details.field_violations == {"tasks[0].aspects.aspects[0].terms": "at most 50 terms"}
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label="price", terms=["x" * 65]))))
    assert details.field_violations == {"tasks[0].aspects.aspects[0].terms[0]": "at most 64 characters"}
    details = await refused(classify(stub, ["fine"], task(pb.Aspect(label="a")), task(pb.Aspect(label="b"))))
    assert details.field_violations == {"tasks": "at most one AspectsTask"}
    reply = await classify(stub, ["The price is fair."], task(pb.Aspect(label="price")))
    assert [item.aspect for item in reply.results[0].aspects.aspects] == ["price"]


def test_aspects_files_in_every_shape(tmp_path):
    listed = tmp_path / "listed.yaml"
    listed.write_text("aspects:\n  - label: delivery\n    terms: [parcel, livraison]\n  - price\n")
    mapped = tmp_path / "mapped.yaml"
    mapped.write_text("delivery: [parcel, livraison]\nprice: cost\n")
    for path in (listed, mapped):
        task = load_aspects(path)
        assert [aspect.label for aspect in task.aspects] == ["delivery", "price"]
        assert list(task.aspects[0].terms) == ["parcel", "livraison"]
    assert list(load_aspects(mapped).aspects[1].terms) == ["cost"]


async def test_cli_spells_the_task_aspects_file(classification_server, issuer, tenant, tmp_path):
    aspects = tmp_path / "aspects.yaml"
    aspects.write_text("taste: [coffee]\ndelivery: [parcel]\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("The coffee is great but the parcel arrived late and crushed.\nNice shop.\n")
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst"])
    common = ["--target", f"127.0.0.1:{classification_server.port}", "--token", token]
    runner = CliRunner()

    def run(*arguments):
        result = runner.invoke(classify_command, [str(texts), "--task", f"aspects:{aspects}", *arguments, *common])
        assert result.exit_code == 0, result.output
        return result.output

    lines = (await asyncio.to_thread(run)).splitlines()
    assert lines[0].endswith("taste positive, delivery negative")
    assert lines[1].endswith("-")
    assert any(line.startswith("aspects: ") and "delivery negative 1 (50%)" in line for line in lines)
    results = [json.loads(line) for line in (await asyncio.to_thread(run, "--json")).splitlines()]
    first = {found["aspect"]: found for found in results[0]["aspects"]["aspects"]}
    span = first["delivery"]["evidence"][0]
    assert results[0]["text"][span["start"] : span["end"]] == "the parcel arrived late and crushed"
