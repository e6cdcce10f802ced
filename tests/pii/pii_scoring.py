"""Span-level precision and recall: a found span counts when it overlaps a labelled span of the same kind.

Each labelled span is matched at most once, so splitting one address in two pieces counts one hit and one
false positive. Strict figures (exact boundaries) are kept beside the overlap figures.
"""

import collections
from dataclasses import dataclass, field


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Scores:
    per_kind: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    overall: Tally = field(default_factory=Tally)

    def add(self, expected: list[tuple[str, int, int]], found: list[tuple[str, int, int]]) -> None:
        unmatched = list(expected)
        for kind, start, end in found:
            match = next((span for span in unmatched if span[0] == kind and span[1] < end and start < span[2]), None)
            tally = self.per_kind[kind]
            if match is None:
                tally.fp += 1
                self.overall.fp += 1
                continue
            unmatched.remove(match)
            tally.tp += 1
            self.overall.tp += 1
            if (start, end) == match[1:]:
                tally.exact += 1
                self.overall.exact += 1
        for kind, _, _ in unmatched:
            self.per_kind[kind].fn += 1
            self.overall.fn += 1

    def table(self) -> str:
        lines = [f"{'kind':<14} {'P':>5} {'R':>5} {'tp':>5} {'fp':>5} {'fn':>5}"]
        for kind in sorted(self.per_kind):
            tally = self.per_kind[kind]
            lines.append(
                f"{kind:<14} {tally.precision:5.2f} {tally.recall:5.2f} {tally.tp:5d} {tally.fp:5d} {tally.fn:5d}"
            )
        tally = self.overall
        lines.append(
            f"{'overall':<14} {tally.precision:5.2f} {tally.recall:5.2f} {tally.tp:5d} {tally.fp:5d} {tally.fn:5d}"
        )
        return "\n".join(lines)


def score(samples, detect) -> dict[str, Scores]:
    """`detect(text, language)` returns (kind, start, end) triples; scores per language."""
    by_language: dict[str, Scores] = collections.defaultdict(Scores)
    for sample in samples:
        expected = [(span.kind, span.start, span.end) for span in sample.spans]
        by_language[sample.language].add(expected, detect(sample.text, sample.language))
    return by_language
