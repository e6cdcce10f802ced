"""The classification service's core: validation, model orchestration, classifier lifecycle, signals.

Plain Python: it knows nothing of gRPC or protobuf; the servicer converts at the edge. Model
inference and training are CPU-bound and run in the core's thread pool, off the event loop.
"""

import asyncio
import dataclasses
import hashlib
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from matcha.classification.aspects import Aspect, AspectSentiment, aspect_clauses, aspect_sentiments
from matcha.classification.language import DetectedLanguage, LanguageDetector
from matcha.classification.records import ClassifierRecord, ExampleSubject, Lineage, NewClassifier, SubjectErasure
from matcha.classification.sentiment import FRENCH, ModelRef, SentimentAnalyzer, SentimentScore
from matcha.classification.signals import PostInput, SignalParameters, SignalReport, detect_signals
from matcha.classification.store import ClassifierStore
from matcha.classification.topics import DEFAULT_THRESHOLD, TopicLabel, prototypes, topic_scores
from matcha.classification.training import CALIBRATED_METHOD, LinearHead, Metrics, measure, train_with_holdout
from matcha.embedding.reader import (
    CollectionContents,
    CollectionReader,
    CollectionSource,
    check_collection_source,
    check_metadata_field,
    metadata_value,
)
from matcha.models.encoders import Encoder
from matcha.runtime import page_tokens
from matcha.runtime.batching import MicroBatcher
from matcha.runtime.data_map import SubjectHolding, cap_exports, check_subject_id, require_describer
from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, Violations
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy

CLASSIFIER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
CLASSIFIER_MODEL_PREFIX = "matcha-classifier/"
ERASURE_ROLE = "admin"
# A refusal lists at most this many collection documents; a count says how many more.
MAX_LISTED_DOCUMENTS = 20
_EXAMPLE_FIELD = re.compile(r"^(examples|posts)\[(\d+)\](?:\.(\w+))?$")
# Protobuf Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS = -62135596800
MAX_TIMESTAMP_SECONDS = 253402300799


@dataclass(frozen=True)
class Limits:
    max_texts_per_call: int = 256
    max_text_chars: int = 10_000
    max_tasks: int = 10
    max_topic_labels: int = 100
    max_aspects: int = 50
    max_aspect_terms: int = 50
    max_label_examples: int = 20
    max_examples: int = 20_000
    max_classifier_labels: int = 100
    max_label_chars: int = 64
    max_id_chars: int = 256
    max_description_chars: int = 1000
    max_posts: int = 50_000
    max_collection_examples: int = 20_000
    max_collection_posts: int = 50_000
    max_page_size: int = 200
    default_page_size: int = 50


@dataclass(frozen=True)
class SentimentTask:
    pass


@dataclass(frozen=True)
class TopicsTask:
    labels: list[TopicLabel]
    threshold: float | None = None
    single_label: bool = False


@dataclass(frozen=True)
class CustomTask:
    classifier: str
    version: int = 0


@dataclass(frozen=True)
class AspectsTask:
    aspects: list[Aspect]


Task = SentimentTask | TopicsTask | CustomTask | AspectsTask


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float
    assigned: bool


@dataclass(frozen=True)
class CustomPrediction:
    classifier: str
    version: int
    label: str
    confidence: float
    # Best first.
    scores: list[LabelScore]


@dataclass(frozen=True)
class TextResult:
    language: DetectedLanguage
    sentiment: SentimentScore | None = None
    topics: list[LabelScore] | None = None
    custom: list[CustomPrediction] = field(default_factory=list)
    aspects: list[AspectSentiment] | None = None


@dataclass(frozen=True)
class ClassifyOutcome:
    results: list[TextResult]
    models: list[ModelRef]


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: str
    # The text's policy; unset class and purposes are the call's.
    data_class: DataClass | None = None
    consented_purposes: frozenset[str] = frozenset()
    source: str = ""
    subject_id: str = ""


@dataclass(frozen=True)
class ExampleCollection:
    """Labelled examples read from a collection: the label is a metadata field ("label" when empty)."""

    source: CollectionSource
    label_field: str = ""

    @property
    def label_path(self) -> str:
        return self.label_field or "label"


@dataclass(frozen=True)
class PostCollection:
    """Posts read from a collection: time from a metadata field ("time" when empty), source from another one
    (the document policy's source when empty)."""

    source: CollectionSource
    time_field: str = ""
    source_field: str = ""

    @property
    def time_path(self) -> str:
        return self.time_field or "time"


@dataclass(frozen=True)
class Instant:
    """A protobuf Timestamp or Duration as received: validated here, not at the edge."""

    seconds: int
    nanos: int


@dataclass(frozen=True)
class RawPost:
    id: str
    text: str
    time: Instant | None
    source: str = ""


@dataclass(frozen=True)
class SignalRequest:
    posts: list[RawPost]
    window: Instant | None = None
    look_back: Instant | None = None
    end_time: Instant | None = None
    min_topic_size: int = 0
    strong_share: float | None = None
    min_active_windows: int = 0
    min_growth_slope: float | None = None
    max_topics: int = 0
    representative_count: int | None = None
    seed: int = 0
    skip_sentiment: bool = False
    collection: PostCollection | None = None


@dataclass(frozen=True)
class SignalOutcome:
    report: SignalReport
    start: datetime
    end: datetime
    window: timedelta
    models: list[ModelRef]


@dataclass(frozen=True)
class ClassifierPage:
    classifiers: list[ClassifierRecord]
    next_page_token: str


def classifier_model(record: ClassifierRecord) -> ModelRef:
    return ModelRef(f"{CLASSIFIER_MODEL_PREFIX}{record.name}", str(record.version))


class ClassificationCore:
    def __init__(
        self,
        encoder: Encoder,
        batcher: MicroBatcher[str, np.ndarray],
        store: ClassifierStore,
        limits: Limits,
        collections: CollectionReader,
    ) -> None:
        self._encoder = encoder
        self._batcher = batcher
        self._store = store
        self.limits = limits
        self._collections = collections
        # Language detection, lexicon scoring, training and clustering: never on the event loop.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="classification-cpu")
        self._languages: LanguageDetector | None = None
        self._sentiment: SentimentAnalyzer | None = None

    async def load(self) -> None:
        """Loads the language model and the sentiment models; the encoder is loaded by its owner."""
        self._languages, self._sentiment = await self._run(lambda: (LanguageDetector(), SentimentAnalyzer()))

    def check_embedding_model(self) -> None:
        if self._analyzer.english.embedding_model_id != self.embedding_model.id:
            raise RuntimeError(
                f"the sentiment head was trained on {self._analyzer.english.embedding_model_id}, "
                f"but the encoder runs {self.embedding_model.id}"
            )

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def _analyzer(self) -> SentimentAnalyzer:
        if self._sentiment is None:
            raise RuntimeError("sentiment models not loaded")
        return self._sentiment

    @property
    def _detector(self) -> LanguageDetector:
        if self._languages is None:
            raise RuntimeError("language model not loaded")
        return self._languages

    @property
    def embedding_model(self) -> ModelRef:
        return ModelRef(self._encoder.info.id, self._encoder.info.version)

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def run_cpu(self, function, *args):
        """Runs CPU-bound work (clustering, scoring) in the core's thread pool."""
        return await self._run(function, *args)

    async def analyse(self, texts: list[str]) -> tuple[np.ndarray, list[SentimentScore]]:
        """Embeddings and sentiment scores (polarity and the model that scored it) of texts, as DetectSignals
        computes them."""
        embeddings = await self._embed(texts)
        languages = await self._run(self._detect_languages, texts, "")
        scores = await self._run(self._analyzer.score, texts, [found.code for found in languages], embeddings)
        return embeddings, scores

    async def _embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack(await self._batcher.submit(texts))

    async def _embed_documents(self, ids: list[str], texts: list[str], stored: dict[str, np.ndarray]) -> np.ndarray:
        """The collection's own vectors when they are this service's model's; the texts embedded otherwise."""
        if stored and all(identifier in stored for identifier in ids):
            return np.vstack([stored[identifier] for identifier in ids])
        return await self._embed(texts)

    async def _read(
        self, call: CallContext, source: CollectionSource, field_path: str, max_limit: int
    ) -> tuple[CollectionContents, dict[str, np.ndarray]]:
        contents = await self._collections.read(
            call, source, field_path=field_path, default_limit=max_limit, max_limit=max_limit, include_vectors=True
        )
        reusable = (contents.model_id, contents.model_version) == (
            self.embedding_model.id,
            self.embedding_model.version,
        )
        vectors = (
            {document.id: document.embedding for document in contents.documents if document.embedding is not None}
            if reusable
            else {}
        )
        return contents, vectors

    async def _collection_examples(
        self, call: CallContext, collection: ExampleCollection
    ) -> tuple[list[Example], dict[str, np.ndarray]]:
        contents, vectors = await self._read(call, collection.source, "collection", self.limits.max_collection_examples)
        examples, unlabelled = [], []
        for document in contents.documents:
            label = _label_text(metadata_value(document.metadata, collection.label_path))
            if label is None:
                unlabelled.append(document.id)
            policy = document.policy
            examples.append(
                Example(
                    document.id,
                    document.text,
                    label or "",
                    policy.data_class,
                    policy.consented_purposes,
                    policy.source,
                    policy.subject_id,
                )
            )
        if unlabelled:
            raise InvalidArgument(
                "collection documents without a label",
                violations=[
                    FieldViolation(
                        "collection.label_field",
                        f"{_listed(unlabelled)} hold no string, number or boolean at {collection.label_path!r}; "
                        f'filter with {{"{collection.label_path}": {{"$exists": true}}}} to leave them out',
                    )
                ],
            )
        return examples, vectors

    # Classify

    async def classify(
        self, call: CallContext, texts: list[str], tasks: list[Task | None], language: str
    ) -> ClassifyOutcome:
        """`tasks`: None for a task of a kind this service does not know (refused)."""
        self._validate_classify(texts, tasks, language)
        classifiers = {}
        for task in tasks:
            if isinstance(task, CustomTask) and (task.classifier, task.version) not in classifiers:
                record = await self._store.get(call.tenant, task.classifier, task.version)
                _usable_head(record)
                self._require_current_embedding(record)
                classifiers[(task.classifier, task.version)] = record
        topics_task = next((task for task in tasks if isinstance(task, TopicsTask)), None)
        phrases = [phrase for label in topics_task.labels for phrase in label.phrases()] if topics_task else []
        aspects_task = next((task for task in tasks if isinstance(task, AspectsTask)), None)
        found_clauses = [aspect_clauses(text, aspects_task.aspects) for text in texts] if aspects_task else []
        languages = await self._run(self._detect_languages, texts, language)
        clause_texts = [
            texts[index][span.start : span.end] for index, found in enumerate(found_clauses) for span, _ in found
        ]
        clause_languages = [languages[index].code for index, found in enumerate(found_clauses) for _ in found]
        # Only the clauses the English head scores are embedded: French goes to the French lexicon.
        embedded_clauses = [index for index, code in enumerate(clause_languages) if code != FRENCH]
        embeddings = await self._embed(texts + phrases + [clause_texts[index] for index in embedded_clauses])
        text_embeddings = embeddings[: len(texts)]
        wants_sentiment = any(isinstance(task, SentimentTask) for task in tasks)
        sentiments = (
            await self._run(self._analyzer.score, texts, [found.code for found in languages], text_embeddings)
            if wants_sentiment
            else [None] * len(texts)
        )
        topic_rows = None
        if topics_task:
            label_prototypes = prototypes(topics_task.labels, list(embeddings[len(texts) :]))
            topic_rows = self._topic_results(topics_task, topic_scores(text_embeddings, label_prototypes))
        aspect_rows = None
        clause_scores: list[SentimentScore] = []
        if aspects_task:
            # Each clause is scored by the model of its text's language, with the sentiment task's model.
            if clause_texts:
                clause_embeddings = np.zeros((len(clause_texts), embeddings.shape[1]), dtype=embeddings.dtype)
                clause_embeddings[embedded_clauses] = embeddings[len(texts) + len(phrases) :]
                clause_scores = await self._run(self._analyzer.score, clause_texts, clause_languages, clause_embeddings)
            aspect_rows = aspect_sentiments(found_clauses, aspects_task.aspects, clause_scores)
        lexicon = None
        if any(record.method == CALIBRATED_METHOD for record in classifiers.values()):
            lexicon = await self._run(self._analyzer.english.lexicon.features, texts)
        custom_columns = [
            self._custom_predictions(
                classifiers[(task.classifier, task.version)],
                classifier_features(classifiers[(task.classifier, task.version)].method, text_embeddings, lexicon),
            )
            for task in tasks
            if isinstance(task, CustomTask)
        ]
        results = [
            TextResult(
                language=languages[index],
                sentiment=sentiments[index],
                topics=topic_rows[index] if topic_rows else None,
                custom=[column[index] for column in custom_columns],
                aspects=aspect_rows[index] if aspect_rows is not None else None,
            )
            for index in range(len(texts))
        ]
        models = [self.embedding_model]
        scorers = {score.model for score in sentiments if score} | {score.model for score in clause_scores}
        models += sorted(scorers, key=lambda model: model.id)
        models += [classifier_model(record) for record in classifiers.values()]
        return ClassifyOutcome(results, models)

    def _detect_languages(self, texts: list[str], language: str) -> list[DetectedLanguage]:
        if language:
            return [DetectedLanguage(language, 1.0)] * len(texts)
        return [self._detector.detect(text) for text in texts]

    @staticmethod
    def _topic_results(task: TopicsTask, scores: np.ndarray) -> list[list[LabelScore]]:
        threshold = DEFAULT_THRESHOLD if task.threshold is None else task.threshold
        rows = []
        for row in scores:
            assigned = row >= threshold
            if task.single_label:
                best = int(np.argmax(row))
                assigned = np.zeros_like(assigned)
                assigned[best] = row[best] >= threshold
            rows.append(
                [
                    LabelScore(label.name, float(score), bool(flag))
                    for label, score, flag in zip(task.labels, row, assigned, strict=True)
                ]
            )
        return rows

    @staticmethod
    def _custom_predictions(record: ClassifierRecord, features: np.ndarray) -> list[CustomPrediction]:
        head = _usable_head(record)
        predictions = []
        for row in head.probabilities(features):
            order = np.argsort(-row, kind="stable")
            best = int(order[0])
            predictions.append(
                CustomPrediction(
                    classifier=record.name,
                    version=record.version,
                    label=head.labels[best],
                    confidence=float(row[best]),
                    scores=[LabelScore(head.labels[i], float(row[i]), i == best) for i in order],
                )
            )
        return predictions

    def _validate_classify(self, texts: list[str], tasks: list[Task | None], language: str) -> None:
        violations = Violations()
        violations.check_texts(
            "texts", texts, max_items=self.limits.max_texts_per_call, max_chars=self.limits.max_text_chars
        )
        if violations.check(0 < len(tasks) <= self.limits.max_tasks, "tasks", f"1 to {self.limits.max_tasks} tasks"):
            for kind in (SentimentTask, TopicsTask, AspectsTask):
                violations.check(
                    sum(isinstance(task, kind) for task in tasks) <= 1, "tasks", f"at most one {kind.__name__}"
                )
        for index, task in enumerate(tasks):
            path = f"tasks[{index}]"
            if task is None:
                violations.add(path, "choose sentiment, topics, aspects or custom")
            elif isinstance(task, TopicsTask):
                self._check_topics(violations, f"{path}.topics", task)
            elif isinstance(task, AspectsTask):
                self._check_aspects(violations, f"{path}.aspects", task)
            elif isinstance(task, CustomTask):
                self._check_classifier_name(violations, f"{path}.custom.classifier", task.classifier)
                violations.check(task.version >= 0, f"{path}.custom.version", "0 (latest) or a version number")
        violations.check(
            not language or bool(LANGUAGE_CODE.match(language)), "language", "an ISO 639-1 code such as 'en', or empty"
        )
        violations.raise_if_any()

    def _check_topics(self, violations: Violations, path: str, task: TopicsTask) -> None:
        limit = self.limits.max_topic_labels
        violations.check(0 < len(task.labels) <= limit, f"{path}.labels", f"1 to {limit} labels")
        names = set()
        for index, label in enumerate(task.labels):
            label_path = f"{path}.labels[{index}]"
            if not label.name.strip():
                violations.add(f"{label_path}.name", "must not be empty")
            elif label.name in names:
                violations.add(f"{label_path}.name", f"duplicate label {label.name!r}")
            names.add(label.name)
            violations.check(
                len(label.examples) <= self.limits.max_label_examples,
                f"{label_path}.examples",
                f"at most {self.limits.max_label_examples} examples",
            )
            for example_index, example in enumerate(label.examples):
                violations.check_text(f"{label_path}.examples[{example_index}]", example, self.limits.max_text_chars)
        if task.threshold is not None:
            violations.check(0.0 <= task.threshold <= 1.0, f"{path}.threshold", "between 0 and 1")

    def _check_aspects(self, violations: Violations, path: str, task: AspectsTask) -> None:
        limits = self.limits
        violations.check(
            0 < len(task.aspects) <= limits.max_aspects, f"{path}.aspects", f"1 to {limits.max_aspects} aspects"
        )
        labels = set()
        for index, aspect in enumerate(task.aspects):
            aspect_path = f"{path}.aspects[{index}]"
            label = aspect.label.strip()
            if not label:
                violations.add(f"{aspect_path}.label", "must not be empty")
            elif len(label) > limits.max_label_chars:
                violations.add(f"{aspect_path}.label", f"at most {limits.max_label_chars} characters")
            elif label.casefold() in labels:
                violations.add(f"{aspect_path}.label", f"duplicate aspect {aspect.label!r}")
            labels.add(label.casefold())
            violations.check(
                len(aspect.terms) <= limits.max_aspect_terms,
                f"{aspect_path}.terms",
                f"at most {limits.max_aspect_terms} terms",
            )
            for term_index, term in enumerate(aspect.terms):
                term_path = f"{aspect_path}.terms[{term_index}]"
                if not term.strip():
                    violations.add(term_path, "must not be empty")
                elif len(term) > limits.max_label_chars:
                    violations.add(term_path, f"at most {limits.max_label_chars} characters")

    # Custom classifiers

    async def train(
        self,
        call: CallContext,
        name: str,
        description: str,
        examples: list[Example],
        holdout_fraction: float | None,
        seed: int,
        collection: ExampleCollection | None = None,
    ) -> ClassifierRecord:
        """Trains on `examples`, or on the documents of `collection` the caller may see."""
        holdout_fraction = 0.2 if holdout_fraction is None else holdout_fraction
        violations = Violations()
        self._check_classifier_name(violations, "name", name)
        violations.check(
            len(description) <= self.limits.max_description_chars,
            "description",
            f"at most {self.limits.max_description_chars} characters",
        )
        violations.check(0.05 <= holdout_fraction <= 0.5, "holdout_fraction", "between 0.05 and 0.5")
        if collection is None:
            self._check_examples(violations, examples)
            self._check_training_labels(violations, examples)
            self._check_example_policies(call, violations, examples)
        else:
            self._check_example_collection(violations, examples, collection)
        violations.raise_if_any()
        if call.idempotency_key:
            existing = await self._store.find_by_idempotency_key(call.tenant, call.idempotency_key)
            if existing is not None:
                return existing
        stored: dict[str, np.ndarray] = {}
        if collection is not None:
            examples, stored = await self._collection_examples(call, collection)
            checks = Violations()
            self._check_examples(checks, examples)
            self._check_training_labels(checks, examples)
            if checks.items:
                raise _collection_refusal(checks.items, examples)
        embeddings = await self._embed_documents(
            [example.id for example in examples], [example.text for example in examples], stored
        )
        labels = [example.label for example in examples]
        lexicon = await self._run(self._analyzer.english.lexicon.features, [example.text for example in examples])
        features = classifier_features(CALIBRATED_METHOD, embeddings, lexicon)
        trained = await self._run(
            lambda: train_with_holdout(features, labels, holdout_fraction=holdout_fraction, seed=seed)
        )
        lineage = Lineage(
            training_set_sha256=training_set_digest(examples),
            example_count=len(examples),
            example_ids=[example_id(example) for example in examples],
            embedding_model=self.embedding_model,
            train_subject=call.principal.subject,
            seed=seed,
            collection=None
            if collection is None
            else {
                "collection": collection.source.collection,
                "filter": collection.source.metadata_filter,
                "label_field": collection.label_path,
            },
            subjects=self._example_subjects(call, examples),
        )
        return await self._store.save(
            call.tenant,
            NewClassifier(
                name, description, CALIBRATED_METHOD, trained.head, trained.holdout, lineage, call.idempotency_key
            ),
        )

    async def evaluate(
        self,
        call: CallContext,
        name: str,
        version: int,
        examples: list[Example],
        collection: ExampleCollection | None = None,
    ) -> tuple[ClassifierRecord, Metrics]:
        """Measures on `examples`, or on the documents of `collection` the caller may see."""
        violations = Violations()
        self._check_classifier_name(violations, "name", name)
        violations.check(version >= 0, "version", "0 (latest) or a version number")
        if collection is None:
            self._check_examples(violations, examples)
        else:
            self._check_example_collection(violations, examples, collection)
        violations.raise_if_any()
        record = await self._store.get(call.tenant, name, version)
        head = _usable_head(record)
        stored: dict[str, np.ndarray] = {}
        if collection is not None:
            self._require_current_embedding(record)  # before reading a collection for nothing
            examples, stored = await self._collection_examples(call, collection)
            self._check_examples(violations, examples)
        known = set(head.labels)
        for index, example in enumerate(examples):
            if example.label and example.label not in known:
                violations.add(f"examples[{index}].label", f"{record.name!r} does not predict {example.label!r}")
        if collection is not None and violations.items:
            raise _collection_refusal(violations.items, examples)
        violations.raise_if_any()
        self._require_current_embedding(record)
        embeddings = await self._embed_documents(
            [example.id for example in examples], [example.text for example in examples], stored
        )
        lexicon = None
        if record.method == CALIBRATED_METHOD:
            lexicon = await self._run(self._analyzer.english.lexicon.features, [example.text for example in examples])
        predicted = await self._run(head.predict, classifier_features(record.method, embeddings, lexicon))
        metrics = measure([example.label for example in examples], predicted, list(head.labels))
        return record, metrics

    async def get_classifier(
        self, call: CallContext, name: str, version: int, include_example_ids: bool
    ) -> ClassifierRecord:
        self._require_classifier_reference(name, version)
        return await self._store.get(call.tenant, name, version, include_example_ids=include_example_ids)

    async def list_classifiers(self, call: CallContext, name: str, page_size: int, page_token: str) -> ClassifierPage:
        violations = Violations()
        if name:
            self._check_classifier_name(violations, "name", name)
        page_size = page_size or self.limits.default_page_size
        violations.check(1 <= page_size <= self.limits.max_page_size, "page_size", f"1 to {self.limits.max_page_size}")
        position = _decode_page_token(violations, page_token, name)
        violations.raise_if_any()
        next_position: int | str | None
        if name:
            before = position if isinstance(position, int) else 2**31 - 1
            records = await self._store.list_versions(call.tenant, name, before, page_size + 1)
            next_position = records[page_size - 1].version if len(records) > page_size else None
        else:
            records = await self._store.list_latest(
                call.tenant, position if isinstance(position, str) else "", page_size + 1
            )
            next_position = records[page_size - 1].name if len(records) > page_size else None
        listing = page_tokens.listing_key("classifiers", name)
        token = page_tokens.encode(listing, next_position) if next_position is not None else ""
        return ClassifierPage(records[:page_size], token)

    async def delete_classifier(self, call: CallContext, name: str, version: int) -> int:
        self._require_classifier_reference(name, version)
        return await self._store.delete(call.tenant, name, version)

    def _check_examples(self, violations: Violations, examples: list[Example]) -> None:
        if not violations.check(
            0 < len(examples) <= self.limits.max_examples, "examples", f"1 to {self.limits.max_examples} examples"
        ):
            return
        first_seen: dict[str, int] = {}
        for index, example in enumerate(examples):
            path = f"examples[{index}]"
            if len(example.id) > self.limits.max_id_chars:
                violations.add(f"{path}.id", f"at most {self.limits.max_id_chars} characters")
            elif example.id and example.id in first_seen:
                violations.add(f"{path}.id", f"duplicates examples[{first_seen[example.id]}].id")
            elif example.id:
                first_seen[example.id] = index
            violations.check_text(f"{path}.text", example.text, self.limits.max_text_chars)
            if not example.label.strip():
                violations.add(f"{path}.label", "must not be empty")
            elif len(example.label) > self.limits.max_label_chars:
                violations.add(f"{path}.label", f"at most {self.limits.max_label_chars} characters")

    def _check_example_collection(
        self, violations: Violations, examples: list[Example], collection: ExampleCollection
    ) -> None:
        violations.check(not examples, "examples", "give examples or a collection, not both")
        check_collection_source(
            violations, "collection", collection.source, max_limit=self.limits.max_collection_examples
        )
        if collection.label_field:
            check_metadata_field(violations, "collection.label_field", collection.label_field)

    def _check_training_labels(self, violations: Violations, examples: list[Example]) -> None:
        counts = Counter(example.label for example in examples if example.label.strip())
        if len(counts) < 2:
            violations.add("examples", f"at least 2 distinct labels (got {len(counts)})")
        elif len(counts) > self.limits.max_classifier_labels:
            violations.add("examples", f"at most {self.limits.max_classifier_labels} labels (got {len(counts)})")
        for label, count in sorted(counts.items()):
            if count < 2:
                index = next(i for i, example in enumerate(examples) if example.label == label)
                violations.add(f"examples[{index}].label", f"the only example of {label!r}; at least 2 per label")

    def _require_classifier_reference(self, name: str, version: int) -> None:
        violations = Violations()
        self._check_classifier_name(violations, "name", name)
        violations.check(version >= 0, "version", "0 (latest) or a version number")
        violations.raise_if_any()

    def _check_example_policies(self, call: CallContext, violations: Violations, examples: list[Example]) -> None:
        """An inline example's policy cannot claim more than the call declared, nor a purpose it was not given for."""
        for index, example in enumerate(examples):
            if example.data_class is not None and example.data_class > call.data_class:
                violations.add(
                    f"examples[{index}].policy.data_class",
                    f"{example.data_class.name} exceeds the call's declared data class {call.data_class.name}",
                )
            elif example.consented_purposes:
                data_class = example.data_class or call.data_class
                if data_class > DataClass.PUBLIC and call.purpose not in example.consented_purposes:
                    violations.add(
                        f"examples[{index}].policy.consented_purposes",
                        f"the call's purpose {call.purpose!r} is not among them",
                    )

    @staticmethod
    def _example_subjects(call: CallContext, examples: list[Example]) -> tuple[ExampleSubject, ...]:
        """The examples naming a data subject, with the policy they were trained under."""
        return tuple(
            ExampleSubject(
                example_id(example),
                example.label,
                RecordPolicy.submitted(
                    call, example.data_class, example.consented_purposes, example.source, example.subject_id
                ),
            )
            for example in examples
            if example.subject_id
        )

    # Data subjects

    async def erase_subject(self, call: CallContext, subject_id: str) -> SubjectErasure:
        check_subject_id(subject_id)
        call.require_role(ERASURE_ROLE)
        return await self._store.erase_subject(call.tenant, subject_id)

    async def describe_subject(self, call: CallContext, subject_id: str) -> list[SubjectHolding]:
        check_subject_id(subject_id)
        require_describer(call)
        return cap_exports(await self._store.describe_subject(call.tenant, subject_id, call.data_class))

    def _require_current_embedding(self, record: ClassifierRecord) -> None:
        if record.lineage.embedding_model != self.embedding_model:
            trained_on = record.lineage.embedding_model
            raise FailedPrecondition(
                f"classifier {record.name!r} version {record.version} was trained on {trained_on.id} "
                f"{trained_on.version}; this service runs {self.embedding_model.id} {self.embedding_model.version}",
                reason="MODEL_MISMATCH",
                metadata={"classifier_model": trained_on.id, "service_model": self.embedding_model.id},
            )

    # Signals

    async def detect_signals(self, call: CallContext, request: SignalRequest) -> SignalOutcome:
        """Detects signals in `request.posts`, or in the documents of `request.collection` the caller may see."""
        stored: dict[str, np.ndarray] = {}
        if request.collection is not None:
            violations = Violations()
            self._check_post_collection(violations, request, request.collection)
            self._signal_settings(violations, request)  # everything but the posts, before reading them
            violations.raise_if_any()
            request, stored = await self._collection_posts(call, request, request.collection)
            try:
                parameters, posts = self._validate_signals(request)
            except InvalidArgument as refused:
                raise _collection_refusal(refused.violations, request.posts) from None
        else:
            parameters, posts = self._validate_signals(request)
        in_range = [post for post in posts if parameters.start <= post.time < parameters.end]
        models = [self.embedding_model]
        if not in_range:
            return SignalOutcome(SignalReport([], 0, 0), parameters.start, parameters.end, parameters.window, models)
        texts = [post.text for post in in_range]
        embeddings = await self._embed_documents([post.id for post in in_range], texts, stored)
        sentiments = None
        if not request.skip_sentiment:
            languages = await self._run(self._detect_languages, texts, "")
            scores = await self._run(self._analyzer.score, texts, [found.code for found in languages], embeddings)
            sentiments = [score.label for score in scores]
            models += sorted({score.model for score in scores}, key=lambda model: model.id)
        report = await self._run(detect_signals, in_range, embeddings, sentiments, parameters)
        return SignalOutcome(report, parameters.start, parameters.end, parameters.window, models)

    def _check_post_collection(
        self, violations: Violations, request: SignalRequest, collection: PostCollection
    ) -> None:
        violations.check(not request.posts, "posts", "give posts or a collection, not both")
        check_collection_source(violations, "collection", collection.source, max_limit=self.limits.max_collection_posts)
        for path, name in (("time_field", collection.time_field), ("source_field", collection.source_field)):
            if name:
                check_metadata_field(violations, f"collection.{path}", name)

    async def _collection_posts(
        self, call: CallContext, request: SignalRequest, collection: PostCollection
    ) -> tuple[SignalRequest, dict[str, np.ndarray]]:
        contents, vectors = await self._read(call, collection.source, "collection", self.limits.max_collection_posts)
        if not contents.documents:
            raise InvalidArgument(
                "no posts to analyse",
                violations=[
                    FieldViolation(
                        "collection",
                        f"no document of {collection.source.collection!r} matches the filter and may be read for "
                        f"purpose {call.purpose!r} at data class {call.data_class.name} or below",
                    )
                ],
            )
        posts, untimed = [], []
        for document in contents.documents:
            time = _instant_of(metadata_value(document.metadata, collection.time_path))
            if time is None:
                untimed.append(document.id)
            source = (
                metadata_value(document.metadata, collection.source_field)
                if collection.source_field
                else document.policy.source
            )
            posts.append(RawPost(document.id, document.text, time, "" if source is None else str(source)))
        if untimed:
            raise InvalidArgument(
                "collection documents without a time",
                violations=[
                    FieldViolation(
                        "collection.time_field",
                        f"{_listed(untimed)} hold no RFC 3339 time with an offset, nor Unix seconds, at "
                        f"{collection.time_path!r}",
                    )
                ],
            )
        return dataclasses.replace(request, posts=posts), vectors

    def _validate_signals(self, request: SignalRequest) -> tuple[SignalParameters, list[PostInput]]:
        violations = Violations()
        posts: list[PostInput] = []
        if violations.check(
            0 < len(request.posts) <= self.limits.max_posts, "posts", f"1 to {self.limits.max_posts} posts"
        ):
            first_seen: dict[str, int] = {}
            for index, post in enumerate(request.posts):
                path = f"posts[{index}]"
                if not post.id:
                    violations.add(f"{path}.id", "must not be empty")
                elif post.id in first_seen:
                    violations.add(f"{path}.id", f"duplicates posts[{first_seen[post.id]}].id")
                else:
                    first_seen[post.id] = index
                violations.check_text(f"{path}.text", post.text, self.limits.max_text_chars)
                time = _timestamp(violations, f"{path}.time", post.time, required=True)
                if time is not None:
                    posts.append(PostInput(post.id, post.text, time, post.source))
        settings = self._signal_settings(violations, request)
        violations.raise_if_any()
        end = settings.pop("end") or max(post.time for post in posts) + timedelta(microseconds=1)
        return SignalParameters(end=end, seed=request.seed, **settings), posts

    @staticmethod
    def _signal_settings(violations: Violations, request: SignalRequest) -> dict:
        """The parameters other than the posts, defaults applied (`end` None: just after the latest post)."""
        window = _duration(violations, "window", request.window) or timedelta(days=1)
        if not timedelta(minutes=1) <= window <= timedelta(days=90):
            violations.add("window", "between 1 minute and 90 days")
            window = timedelta(days=1)
        look_back = _duration(violations, "look_back", request.look_back) or window * 14
        window_count = -(-look_back // window)  # ceiling: a partial window still counts
        violations.check(3 <= window_count <= 1000, "look_back", "3 to 1000 windows")
        end = _timestamp(violations, "end_time", request.end_time, required=False)
        defaults = SignalParameters  # the dataclass defaults are the contract's
        min_topic_size = request.min_topic_size or defaults.min_topic_size
        violations.check(2 <= min_topic_size <= 1000, "thresholds.min_topic_size", "2 to 1000")
        strong_share = defaults.strong_share if request.strong_share is None else request.strong_share
        violations.check(0.0 < strong_share <= 1.0, "thresholds.strong_share", "in (0, 1]")
        min_active = request.min_active_windows or defaults.min_active_windows
        violations.check(min_active >= 2, "thresholds.min_active_windows", "2 or more")
        min_slope = defaults.min_growth_slope if request.min_growth_slope is None else request.min_growth_slope
        violations.check(bool(np.isfinite(min_slope)), "thresholds.min_growth_slope", "a finite number")
        max_topics = request.max_topics or defaults.max_topics
        violations.check(1 <= max_topics <= 200, "max_topics", "1 to 200")
        representatives = (
            defaults.representative_count if request.representative_count is None else request.representative_count
        )
        violations.check(0 <= representatives <= 10, "representative_count", "0 to 10")
        return {
            "window": window,
            "window_count": window_count,
            "end": end,
            "min_topic_size": min_topic_size,
            "strong_share": strong_share,
            "min_active_windows": min_active,
            "min_growth_slope": min_slope,
            "max_topics": max_topics,
            "representative_count": representatives,
        }

    # Shared checks

    @staticmethod
    def _check_classifier_name(violations: Violations, path: str, name: str) -> None:
        violations.check(
            bool(CLASSIFIER_NAME.match(name)),
            path,
            "1-63 lowercase letters, digits, '-' or '_', starting with a letter",
        )


def _listed(document_ids: list[str]) -> str:
    shown = ", ".join(repr(identifier) for identifier in document_ids[:MAX_LISTED_DOCUMENTS])
    more = len(document_ids) - MAX_LISTED_DOCUMENTS
    return f"documents {shown}" + (f" and {more} more" if more > 0 else "")


def _label_text(value: Any) -> str | None:
    """Labels are strings; numbers and booleans are read as their JSON text (stars 5 is the label "5")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value if isinstance(value, str) else None


def _instant_of(value: Any) -> Instant | None:
    """An RFC 3339 time or Unix seconds, as a Timestamp would carry it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not np.isfinite(value):
            return None
        seconds = int(value // 1)
        return Instant(seconds, round((value - seconds) * 1e9) % 1_000_000_000)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without an offset is ambiguous
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return Instant(delta.days * 86_400 + delta.seconds, delta.microseconds * 1000)


def _collection_refusal(violations: tuple[FieldViolation, ...] | list[FieldViolation], items: list) -> InvalidArgument:
    """Refusals of examples or posts read from a collection, addressed to the request's collection fields:
    `examples[3].label` becomes `collection.label_field`, naming the id of the document it came from."""
    translated = []
    for violation in violations:
        match = _EXAMPLE_FIELD.match(violation.field)
        if match is None:
            translated.append(FieldViolation("collection", violation.description))
            continue
        item = items[int(match[2])]
        target = {"label": "collection.label_field", "time": "collection.time_field"}.get(match[3], "collection")
        translated.append(FieldViolation(target, f"document {item.id!r}: {violation.description}"))
    return InvalidArgument("the collection's documents are not a valid input", violations=translated)


# Lexicon features against a unit-norm embedding: enough for polarity to count when the labels are about it.
CUSTOM_LEXICON_SCALE = 1.0


def _usable_head(record: ClassifierRecord) -> LinearHead:
    if record.head is None:
        raise FailedPrecondition(
            f"classifier {record.name!r} version {record.version} was withdrawn when a data subject it was "
            "trained on was erased; train a new version",
            reason="CLASSIFIER_WITHDRAWN",
            metadata={"classifier": record.name, "version": str(record.version)},
        )
    return record.head


def classifier_features(method: str, embeddings: np.ndarray, lexicon: np.ndarray | None) -> np.ndarray:
    """What a classifier's head reads: the embedding, and for calibrated heads the lexicon features too."""
    if method != CALIBRATED_METHOD:
        return embeddings
    if lexicon is None:
        raise ValueError("a calibrated head reads lexicon features too")
    return np.hstack([embeddings, CUSTOM_LEXICON_SCALE * lexicon]).astype(np.float32)


def example_id(example: Example) -> str:
    return example.id or hashlib.sha256(example.text.encode()).hexdigest()


def training_set_digest(examples: list[Example]) -> str:
    """SHA-256 of the (id, text, label) triples sorted by id: the same set digests the same in any order."""
    digest = hashlib.sha256()
    for identifier, text, label in sorted((example_id(example), example.text, example.label) for example in examples):
        digest.update(json.dumps([identifier, text, label]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _timestamp(violations: Violations, path: str, value: Instant | None, *, required: bool) -> datetime | None:
    if value is None:
        if required:
            violations.add(path, "is required")
        return None
    if not (MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS and 0 <= value.nanos < 1_000_000_000):
        violations.add(path, "not a valid timestamp (years 1 to 9999, nanos in [0, 1e9))")
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _duration(violations: Violations, path: str, value: Instant | None) -> timedelta | None:
    if value is None:
        return None
    if value.seconds <= 0 or not 0 <= value.nanos < 1_000_000_000:
        violations.add(path, "a positive duration")
        return None
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _decode_page_token(violations: Violations, token: str, name: str) -> int | str | None:
    """Classifiers by name (a name to start after), or one classifier's versions (a version to go below)."""
    position = page_tokens.decode(violations, token, page_tokens.listing_key("classifiers", name))
    if position is not None and not isinstance(position, int if name else str):
        violations.add("page_token", page_tokens.INVALID)
        return None
    return position
