"""Zero-shot topics: texts matched against label prototypes in the embedding space.

A label's prototype is the mean of the embeddings of its name (with its description) and
its examples. Scores map cosine similarity through a logistic curve centred where MiniLM
separates related from unrelated short texts; they are comparable across labels but are
not calibrated probabilities.
"""

from dataclasses import dataclass, field

import numpy as np

SCORE_CENTRE = 0.3
SCORE_SCALE = 0.06
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class TopicLabel:
    name: str
    description: str = ""
    examples: list[str] = field(default_factory=list)

    def phrases(self) -> list[str]:
        return [f"{self.name}: {self.description}" if self.description else self.name, *self.examples]


def prototypes(labels: list[TopicLabel], phrase_embeddings: list[np.ndarray]) -> np.ndarray:
    """`phrase_embeddings` follow `TopicLabel.phrases()` of every label, in order."""
    rows, position = [], 0
    for label in labels:
        count = len(label.phrases())
        mean = np.mean(phrase_embeddings[position : position + count], axis=0)
        rows.append(mean / np.linalg.norm(mean))
        position += count
    return np.vstack(rows)


def topic_scores(text_embeddings: np.ndarray, label_prototypes: np.ndarray) -> np.ndarray:
    """One row per text, one column per label, in [0, 1]."""
    similarity = text_embeddings @ label_prototypes.T
    return 1.0 / (1.0 + np.exp(-(similarity - SCORE_CENTRE) / SCORE_SCALE))
