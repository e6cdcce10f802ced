"""`matcha classify`, `matcha classifier ...` and `matcha listen`: the classification service from a terminal.

`classify` runs sentiment, zero-shot topics, aspect sentiment and trained classifiers over a file of texts; `classifier`
trains, evaluates, lists and deletes a tenant's classifiers; `listen` reads timestamped posts and prints
the topics emerging in them (noise, weak or strong signals), and manages listening watches: creates them,
pushes posts into them, follows their alerts live and prints their window reports.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml
from google.protobuf import duration_pb2, json_format
from tqdm import tqdm

from matcha.classification.v1 import classification_pb2 as pb
from matcha.classification.v1 import classification_pb2_grpc
from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.records import batched, open_text, read_records
from matcha.cli.segment import parse_time
from matcha.mesh import CLASSIFICATION

DEFAULT_TARGET = CLASSIFICATION.local_address
FORMATS = click.Choice(["auto", "csv", "jsonl", "text"])
# The service's default limit of texts per Classify call.
DEFAULT_BATCH_SIZE = 64
SENTIMENT_NAMES = {
    pb.SENTIMENT_NEGATIVE: "negative",
    pb.SENTIMENT_NEUTRAL: "neutral",
    pb.SENTIMENT_POSITIVE: "positive",
}
STRENGTH_NAMES = {
    pb.SIGNAL_STRENGTH_STRONG: "strong",
    pb.SIGNAL_STRENGTH_WEAK: "weak",
    pb.SIGNAL_STRENGTH_NOISE: "noise",
}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SPARK = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Row:
    """One record of an input file: its id, its text, and the record itself for the other fields."""

    id: str
    text: str
    record: dict[str, Any]


def read_rows(path: Path, file_format: str, *, text_field: str, id_field: str) -> list[Row]:
    """CSV or JSONL records (via `read_records`), or plain text with one text per line; empty texts are skipped."""
    plain = file_format == "text" or (file_format == "auto" and _is_plain_text(path))
    if plain:
        with open_text(path) as handle:
            lines = [line.strip() for line in handle]
        return [Row(f"line-{n}", line, {text_field: line}) for n, line in enumerate(lines, start=1) if line]
    rows = []
    for number, record in enumerate(read_records(path, file_format), start=1):
        text = str(record.get(text_field) or "").strip()
        if text:
            rows.append(Row(str(record.get(id_field) or f"line-{number}"), text, record))
    if not rows:
        raise click.ClickException(f"no text in {path.name}: is the text column {text_field!r}? (--text-field)")
    return rows


def _is_plain_text(path: Path) -> bool:
    names = [suffix.lower() for suffix in path.suffixes if suffix.lower() not in (".gz", ".bz2")]
    return not names or names[-1] in (".txt", ".text")


# Tasks


def load_labels(path: Path) -> pb.TopicsTask:
    """Topic labels from YAML: a list of names or {name, description, examples}; or a mapping of name to a
    description or to {description, examples}; optionally under `labels:` next to `threshold` and `single_label`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--task") from None
    task = pb.TopicsTask()
    settings = document if isinstance(document, dict) and "labels" in document else {"labels": document}
    entries = settings["labels"]
    if isinstance(entries, dict):
        entries = [{"name": name, **_label_fields(value)} for name, value in entries.items()]
    if not isinstance(entries, list) or not entries:
        raise click.BadParameter(f"{path}: expected a list or mapping of labels", param_hint="--task")
    for entry in entries:
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not entry.get("name"):
            raise click.BadParameter(f"{path}: every label needs a name ({entry!r})", param_hint="--task")
        examples = entry.get("examples") or []
        task.labels.append(
            pb.TopicLabel(
                name=str(entry["name"]),
                description=str(entry.get("description") or ""),
                examples=[str(example) for example in (examples if isinstance(examples, list) else [examples])],
            )
        )
    if settings.get("threshold") is not None:
        task.threshold = float(settings["threshold"])
    task.single_label = bool(settings.get("single_label", False))
    return task


def _label_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"description": str(value)}


def load_aspects(path: Path) -> pb.AspectsTask:
    """Aspects from YAML: a list of labels or {label, terms}; or a mapping of label to its terms (a list, or
    one term), optionally under `aspects:`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--task") from None
    entries = document["aspects"] if isinstance(document, dict) and "aspects" in document else document
    if isinstance(entries, dict):
        entries = [{"label": label, "terms": terms} for label, terms in entries.items()]
    if not isinstance(entries, list) or not entries:
        raise click.BadParameter(f"{path}: expected a list or mapping of aspects", param_hint="--task")
    task = pb.AspectsTask()
    for entry in entries:
        entry = {"label": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not entry.get("label"):
            raise click.BadParameter(f"{path}: every aspect needs a label ({entry!r})", param_hint="--task")
        terms = entry.get("terms") or []
        terms = terms if isinstance(terms, list) else [terms]
        task.aspects.append(pb.Aspect(label=str(entry["label"]), terms=[str(term) for term in terms]))
    return task


def parse_task(spec: str) -> pb.ClassificationTask:
    """`sentiment`, `topics:<labels.yaml>`, `custom:<classifier>[@<version>]` or `aspects:<aspects.yaml>`."""
    kind, _, argument = spec.partition(":")
    if kind == "sentiment" and not argument:
        return pb.ClassificationTask(sentiment=pb.SentimentTask())
    if kind == "topics" and argument:
        path = Path(argument)
        if not path.is_file():
            raise click.BadParameter(f"no labels file {argument}", param_hint="--task")
        return pb.ClassificationTask(topics=load_labels(path))
    if kind == "aspects" and argument:
        path = Path(argument)
        if not path.is_file():
            raise click.BadParameter(f"no aspects file {argument}", param_hint="--task")
        return pb.ClassificationTask(aspects=load_aspects(path))
    if kind == "custom" and argument:
        name, _, version = argument.partition("@")
        if version and not version.isdigit():
            raise click.BadParameter(f"version of {name!r} must be a number", param_hint="--task")
        return pb.ClassificationTask(custom=pb.CustomTask(classifier=name, version=int(version or 0)))
    raise click.BadParameter(
        f"{spec!r}: use sentiment, topics:<labels.yaml> or custom:<classifier>[@<version>], or aspects:<aspects.yaml>",
        param_hint="--task",
    )


async def classify_rows(
    stub, rows: list[Row], tasks: list[pb.ClassificationTask], *, language: str, batch_size: int
) -> tuple[list[pb.TextClassification], list]:
    """Results in input order, and every model used (deduplicated)."""
    results, models = [], {}
    with tqdm(total=len(rows), unit="text", desc="classify", disable=len(rows) <= batch_size) as bar:
        for batch in batched(rows, batch_size):
            reply = await stub.Classify(
                pb.ClassifyRequest(texts=[row.text for row in batch], tasks=tasks, language=language)
            )
            results.extend(reply.results)
            models.update({(model.id, model.version): model for model in reply.models})
            bar.update(len(batch))
    return results, list(models.values())


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def result_cells(result: pb.TextClassification) -> list[str]:
    cells = [result.language]
    if result.HasField("sentiment"):
        sentiment = result.sentiment
        name = SENTIMENT_NAMES[sentiment.label]
        cells.append(f"{name} {getattr(sentiment, name):.2f}")
    if result.HasField("topics"):
        assigned = [f"{score.label} {score.score:.2f}" for score in result.topics.labels if score.assigned]
        cells.append(", ".join(assigned) or "-")
    cells += [f"{custom.classifier}: {custom.label} {custom.confidence:.2f}" for custom in result.custom]
    if result.HasField("aspects"):
        cells.append(
            ", ".join(f"{found.aspect} {SENTIMENT_NAMES[found.label]}" for found in result.aspects.aspects) or "-"
        )
    return cells


def classification_table(rows: list[Row], results: list[pb.TextClassification], width: int = 60) -> list[str]:
    """One line per text, then how many texts fell in each sentiment, topic and custom label."""
    lines = [
        f"{shorten(row.text, width):<{width}}  " + "  ".join(result_cells(result))
        for row, result in zip(rows, results, strict=True)
    ]
    tallies: dict[str, Counter] = {}
    for result in results:
        if result.HasField("sentiment"):
            tallies.setdefault("sentiment", Counter())[SENTIMENT_NAMES[result.sentiment.label]] += 1
        if result.HasField("topics"):
            counter = tallies.setdefault("topics", Counter())
            counter.update(score.label for score in result.topics.labels if score.assigned)
        for custom in result.custom:
            tallies.setdefault(custom.classifier, Counter())[custom.label] += 1
        if result.HasField("aspects"):
            counter = tallies.setdefault("aspects", Counter())
            counter.update(f"{found.aspect} {SENTIMENT_NAMES[found.label]}" for found in result.aspects.aspects)
    lines.append("")
    for name, counter in tallies.items():
        parts = ", ".join(f"{label} {count} ({count / len(results):.0%})" for label, count in counter.most_common())
        lines.append(f"{name}: {parts or 'none assigned'}")
    return lines


@click.command("classify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--task",
    "task_specs",
    multiple=True,
    required=True,
    help="sentiment, topics:<labels.yaml>, custom:<classifier>[@<version>] or aspects:<aspects.yaml> (repeatable)",
)
@click.option(
    "--format", "file_format", type=FORMATS, default="auto", help="default: by extension (.txt: one text per line)"
)
@click.option("--text-field", default="text", show_default=True)
@click.option("--id-field", default="id", show_default=True)
@click.option("--language", default="", help="ISO 639-1 code of every text (default: detected per text)")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(1, 256))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per text instead of a table")
@connection_options(DEFAULT_TARGET)
@run_async
async def classify(
    path: Path,
    task_specs: tuple[str, ...],
    file_format: str,
    text_field: str,
    id_field: str,
    language: str,
    batch_size: int,
    as_json: bool,
    **options,
) -> None:
    """Classify every text of a CSV, JSONL or text file: sentiment, topics, custom classifiers, aspects."""
    tasks = [parse_task(spec) for spec in task_specs]
    rows = read_rows(path, file_format, text_field=text_field, id_field=id_field)
    async with channel_from(options) as channel:
        stub = classification_pb2_grpc.ClassificationServiceStub(channel)
        results, models = await classify_rows(stub, rows, tasks, language=language, batch_size=batch_size)
    if as_json:
        for row, result in zip(rows, results, strict=True):
            fields = json_format.MessageToDict(result, preserving_proto_field_name=True)
            click.echo(json.dumps({"id": row.id, "text": row.text, **fields}, ensure_ascii=False))
        return
    click.echo("\n".join(classification_table(rows, results)))
    click.echo("models: " + ", ".join(f"{model.id} {model.version}" for model in models))


# Classifiers


def labelled_examples(rows: list[Row], label_field: str) -> list[pb.LabeledExample]:
    examples = []
    for row in rows:
        label = str(row.record.get(label_field) or "").strip()
        if not label:
            raise click.ClickException(f"record {row.id} has no {label_field!r} (--label-field)")
        examples.append(pb.LabeledExample(id=row.id, text=row.text, label=label))
    return examples


def metrics_lines(metrics: pb.EvaluationMetrics) -> list[str]:
    """Accuracy and macro-F1, precision/recall/F1 per label, then the confusion matrix (rows: true labels)."""
    lines = [
        f"  {metrics.example_count} examples  accuracy {metrics.accuracy:.3f}  macro-F1 {metrics.macro_f1:.3f}"
        f" (95% interval {metrics.macro_f1_ci_low:.3f} to {metrics.macro_f1_ci_high:.3f})",
        f"  {'label':<24} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}",
    ]
    for label in metrics.per_label:
        lines.append(
            f"  {shorten(label.label, 24):<24} {label.precision:>9.3f} {label.recall:>7.3f} {label.f1:>6.3f} "
            f"{label.support:>8}"
        )
    labels = [shorten(label, 12) for label in metrics.confusion.labels]
    if labels:
        width = max(7, *(len(label) for label in labels))
        lines.append("  confusion (rows: true, columns: predicted)")
        lines.append(f"  {'':<24} " + " ".join(f"{label:>{width}}" for label in labels))
        for short_label, row in zip(labels, metrics.confusion.rows, strict=True):
            lines.append(f"  {short_label:<24} " + " ".join(f"{count:>{width}}" for count in row.counts))
    return lines


def classifier_line(classifier: pb.Classifier) -> str:
    trained = classifier.create_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    metrics = classifier.holdout_metrics
    return (
        f"{classifier.name} v{classifier.version}  {len(classifier.labels)} labels  "
        f"{classifier.lineage.example_count} examples  holdout accuracy {metrics.accuracy:.3f} "
        f"macro-F1 {metrics.macro_f1:.3f}  trained {trained} by {classifier.lineage.train_subject}"
    )


def example_options(command):
    for option in reversed(
        [
            click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
            click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto"),
            click.option("--text-field", default="text", show_default=True),
            click.option("--label-field", default="label", show_default=True),
            click.option("--id-field", default="id", show_default=True),
        ]
    ):
        command = option(command)
    return command


@click.group()
def classifier() -> None:
    """The tenant's own classifiers: train on labelled texts, evaluate, list, delete."""


@classifier.command("train")
@click.option("--name", required=True, help="an existing name gets a new version")
@example_options
@click.option("--description", default="")
@click.option("--holdout", "holdout_fraction", default=0.2, show_default=True, help="share held out for metrics")
@click.option("--seed", default=0, show_default=True)
@connection_options(DEFAULT_TARGET)
@run_async
async def train(
    name: str,
    path: Path,
    file_format: str,
    text_field: str,
    label_field: str,
    id_field: str,
    description: str,
    holdout_fraction: float,
    seed: int,
    **options,
) -> None:
    """Train a classifier on a CSV or JSONL file of labelled texts; print its holdout metrics."""
    rows = read_rows(path, file_format, text_field=text_field, id_field=id_field)
    request = pb.TrainClassifierRequest(
        name=name,
        description=description,
        examples=labelled_examples(rows, label_field),
        holdout_fraction=holdout_fraction,
        seed=seed,
    )
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).TrainClassifier(request)
    trained = reply.classifier
    click.echo(
        f"{trained.name} v{trained.version} trained on {trained.lineage.example_count} examples "
        f"({', '.join(trained.labels)}); training set sha256 {trained.lineage.training_set_sha256[:16]}…"
    )
    click.echo("holdout metrics:")
    click.echo("\n".join(metrics_lines(trained.holdout_metrics)))


@classifier.command("evaluate")
@click.argument("name")
@example_options
@click.option("--version", default=0, help="version (default: the latest)")
@connection_options(DEFAULT_TARGET)
@run_async
async def evaluate(
    name: str, path: Path, file_format: str, text_field: str, label_field: str, id_field: str, version: int, **options
) -> None:
    """Measure a stored classifier on a new labelled file."""
    rows = read_rows(path, file_format, text_field=text_field, id_field=id_field)
    request = pb.EvaluateClassifierRequest(name=name, version=version, examples=labelled_examples(rows, label_field))
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).EvaluateClassifier(request)
    click.echo(f"{name} v{reply.version} on {path.name}:")
    click.echo("\n".join(metrics_lines(reply.metrics)))


@classifier.command("list")
@click.option("--name", default="", help="every version of this classifier (default: the latest of each)")
@connection_options(DEFAULT_TARGET)
@run_async
async def list_classifiers(name: str, **options) -> None:
    """List classifiers: the latest version of each, or every version of one."""
    found = []
    async with channel_from(options) as channel:
        stub = classification_pb2_grpc.ClassificationServiceStub(channel)
        token = ""
        while True:
            reply = await stub.ListClassifiers(pb.ListClassifiersRequest(name=name, page_size=200, page_token=token))
            found.extend(reply.classifiers)
            if not (token := reply.next_page_token):
                break
    for item in found:
        click.echo(classifier_line(item))
    if not found:
        click.echo("no classifiers")


@classifier.command("show")
@click.argument("name")
@click.option("--version", default=0, help="version (default: the latest)")
@connection_options(DEFAULT_TARGET)
@run_async
async def show_classifier(name: str, version: int, **options) -> None:
    """Show a classifier version: lineage and holdout metrics."""
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).GetClassifier(
            pb.GetClassifierRequest(name=name, version=version)
        )
    found = reply.classifier
    click.echo(classifier_line(found))
    if found.description:
        click.echo(f"  {found.description}")
    lineage = found.lineage
    click.echo(
        f"  training set sha256 {lineage.training_set_sha256}  seed {lineage.seed}  "
        f"embedding {lineage.embedding_model.id} {lineage.embedding_model.version}"
    )
    click.echo("holdout metrics:")
    click.echo("\n".join(metrics_lines(found.holdout_metrics)))


@classifier.command("delete")
@click.argument("name")
@click.option("--version", default=0, help="version to delete (default: every version)")
@connection_options(DEFAULT_TARGET)
@run_async
async def delete_classifier(name: str, version: int, **options) -> None:
    """Delete one version of a classifier, or all of them."""
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).DeleteClassifier(
            pb.DeleteClassifierRequest(name=name, version=version)
        )
    click.echo(f"{name}: {reply.deleted_versions} version(s) deleted")


# Listening


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `12h`, `1d`, `2w`."""
    match = DURATION.match(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r}: a number and a unit among s, m, h, d, w (e.g. 1d)")
    return timedelta(**{DURATION_UNITS[match.group(2)]: float(match.group(1))})


def to_post(row: Row, *, time_field: str, source_field: str | None) -> pb.Post:
    value = row.record.get(time_field)
    if value in (None, ""):
        raise click.ClickException(f"record {row.id} has no {time_field!r} (--time-field)")
    try:
        when = parse_time(value)
    except ValueError:
        raise click.ClickException(f"record {row.id}: {value!r} is not a date or ISO 8601 time") from None
    post = pb.Post(id=row.id, text=row.text, source=str(row.record.get(source_field) or "") if source_field else "")
    post.time.FromDatetime(when)
    return post


def sparkline(counts: list[int]) -> str:
    peak = max(counts, default=0)
    if peak == 0:
        return SPARK[0] * len(counts)
    return "".join(
        SPARK[0] if count == 0 else SPARK[max(1, round(count / peak * (len(SPARK) - 1)))] for count in counts
    )


def _day(timestamp) -> str:
    return timestamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")


def signal_report(reply: pb.DetectSignalsResponse, *, show_noise: int = 5, width: int = 100) -> list[str]:
    """Topics by strength: size, growth, first seen, sentiment mix and shift, representative posts."""
    lines = [
        f"{reply.post_count} posts from {_day(reply.start_time)} to {_day(reply.end_time)} UTC, "
        f"{len(reply.topics)} topics, {reply.unclustered_post_count} posts in no topic"
    ]
    by_strength: dict[int, list[pb.SignalTopic]] = {}
    for topic in reply.topics:
        by_strength.setdefault(topic.strength, []).append(topic)
    for strength in (pb.SIGNAL_STRENGTH_STRONG, pb.SIGNAL_STRENGTH_WEAK, pb.SIGNAL_STRENGTH_NOISE):
        topics = by_strength.get(strength, [])
        if not topics:
            continue
        shown = topics if strength != pb.SIGNAL_STRENGTH_NOISE else topics[:show_noise]
        lines += ["", f"{STRENGTH_NAMES[strength].upper()} ({len(topics)})"]
        for topic in shown:
            lines += topic_lines(topic, width=width)
        if len(shown) < len(topics):
            lines.append(f"  ... {len(topics) - len(shown)} more")
    return lines


def topic_lines(topic: pb.SignalTopic, *, width: int) -> list[str]:
    counts = [window.count for window in topic.counts]
    lines = [
        f"  {topic.id:<4} {topic.label}",
        f"       {topic.post_count} posts ({topic.share:.1%})  per window [{sparkline(counts)}]  "
        f"slope {topic.growth_slope:+.2f}  first seen {_day(topic.first_seen)}  "
        f"{topic.source_count} source(s)",
    ]
    if topic.HasField("sentiment_mix"):
        mix = topic.sentiment_mix
        lines.append(
            f"       sentiment {mix.negative:.0%} negative, {mix.neutral:.0%} neutral, {mix.positive:.0%} positive;"
            f" shift {topic.sentiment_shift:+.2f}" + (" (souring)" if topic.sentiment_shift <= -0.2 else "")
        )
    lines += [f"       - {shorten(post.text, width)}" for post in topic.representative_posts]
    return lines


class ListenGroup(click.Group):
    """`matcha listen FILE ...` stays the one-shot report it was (`matcha listen report FILE ...`); a first word
    that names a subcommand runs that subcommand."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["report", *args]
        return super().resolve_command(ctx, args)


@click.group("listen", cls=ListenGroup)
def listen() -> None:
    """Weak signals in a file of posts (`listen FILE`, `listen report FILE`), and listening watches: sources
    analysed window by window, with reports and alerts (`create-watch`, `ingest`, `watch`, `reports`, ...)."""


@listen.command("report")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--window", default="1d", show_default=True, help="width of a counting window (e.g. 12h, 1d, 1w)")
@click.option("--lookback", "look_back", help="period analysed (default: 14 windows)")
@click.option("--end", "end_time", help="end of the period, exclusive (default: just after the latest post)")
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option("--text-field", default="text", show_default=True)
@click.option("--time-field", default="time", show_default=True)
@click.option("--source-field", default="source", show_default=True, help="site, channel or account")
@click.option("--id-field", default="id", show_default=True)
@click.option("--min-topic-size", default=0, help="smallest topic in posts (default 5)")
@click.option("--max-topics", default=0, help="topics returned (default 50)")
@click.option("--skip-sentiment", is_flag=True, help="faster; no sentiment mix")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="the reply as JSON instead of a report")
@connection_options(DEFAULT_TARGET)
@run_async
async def listen_report(
    path: Path,
    window: str,
    look_back: str | None,
    end_time: str | None,
    file_format: str,
    text_field: str,
    time_field: str,
    source_field: str,
    id_field: str,
    min_topic_size: int,
    max_topics: int,
    skip_sentiment: bool,
    seed: int,
    as_json: bool,
    **options,
) -> None:
    """Weak signals in timestamped posts (CSV or JSONL): topics rated noise, weak or strong."""
    request = signal_request(
        read_rows(path, file_format, text_field=text_field, id_field=id_field),
        time_field=time_field,
        source_field=source_field,
        window=parse_duration(window),
        look_back=parse_duration(look_back) if look_back else None,
        end=_parse_end(end_time) if end_time else None,
        min_topic_size=min_topic_size,
        max_topics=max_topics,
        skip_sentiment=skip_sentiment,
        seed=seed,
    )
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).DetectSignals(request)
    if as_json:
        click.echo(json.dumps(json_format.MessageToDict(reply, preserving_proto_field_name=True), ensure_ascii=False))
        return
    click.echo("\n".join(signal_report(reply)))


def _parse_end(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: a date or ISO 8601 time", param_hint="--end") from None


def signal_request(
    rows: list[Row],
    *,
    time_field: str,
    source_field: str | None,
    window: timedelta,
    look_back: timedelta | None = None,
    end: datetime | None = None,
    min_topic_size: int = 0,
    max_topics: int = 0,
    skip_sentiment: bool = False,
    seed: int = 0,
) -> pb.DetectSignalsRequest:
    request = pb.DetectSignalsRequest(
        posts=[to_post(row, time_field=time_field, source_field=source_field) for row in rows],
        thresholds=pb.SignalThresholds(min_topic_size=min_topic_size),
        max_topics=max_topics,
        skip_sentiment=skip_sentiment,
        seed=seed,
    )
    request.window.FromTimedelta(window)
    if look_back:
        request.look_back.FromTimedelta(look_back)
    if end:
        request.end_time.FromDatetime(end)
    return request


# Listening watches

WATCH_TARGET_PURPOSE = "listening"
ALERT_TYPE_NAMES = {pb.ALERT_TYPE_NEW_SIGNAL: "NEW SIGNAL", pb.ALERT_TYPE_SENTIMENT_SHIFT: "SENTIMENT SHIFT"}
SOURCE_STATE_NAMES = {pb.SOURCE_STATE_PENDING: "pending", pb.SOURCE_STATE_OK: "ok", pb.SOURCE_STATE_FAILING: "failing"}
WEBHOOK_STATE_NAMES = {
    pb.WEBHOOK_STATE_PENDING: "webhook pending",
    pb.WEBHOOK_STATE_DELIVERED: "webhook delivered",
    pb.WEBHOOK_STATE_FAILED: "webhook failed",
}


def _named(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, separator, rest = value.partition("=")
        if not separator or not name or not rest:
            raise click.BadParameter(f"{value!r}: NAME=VALUE", param_hint=option)
        pairs.append((name, rest))
    return pairs


def _duration_message(text: str, option: str) -> duration_pb2.Duration:
    try:
        value = parse_duration(text)
    except click.BadParameter:
        raise click.BadParameter(f"{text!r}: a duration such as 30s, 10m, 1h, 1d", param_hint=option) from None
    message = duration_pb2.Duration()
    message.FromTimedelta(value)
    return message


def watch_request(
    name: str,
    *,
    window: str = "1h",
    look_back_windows: int = 0,
    grace: str | None = None,
    push: tuple[str, ...] = (),
    drop_folders: tuple[str, ...] = (),
    feeds: tuple[str, ...] = (),
    poll: str | None = None,
    track: tuple[str, ...] = (),
    webhook: str = "",
    min_topic_size: int = 0,
    shift_threshold: float | None = None,
    description: str = "",
) -> pb.CreateWatchRequest:
    poll_interval = _duration_message(poll, "--poll") if poll else None
    sources = [pb.WatchSource(name=source, push=pb.PushSource()) for source in push]
    for source, path in _named(drop_folders, "--drop-folder"):
        folder = pb.DropFolderSource(path=str(Path(path).resolve()), poll_interval=poll_interval)
        sources.append(pb.WatchSource(name=source, drop_folder=folder))
    for source, url in _named(feeds, "--feed"):
        sources.append(pb.WatchSource(name=source, feed=pb.FeedSource(url=url, poll_interval=poll_interval)))
    if not sources:
        sources.append(pb.WatchSource(name="api", push=pb.PushSource()))
    tracked = []
    for spec in track:
        topic, _, terms = spec.partition("=")
        tracked.append(pb.TrackedTopic(name=topic, terms=[term.strip() for term in terms.split(",") if term.strip()]))
    watch = pb.Watch(
        name=name,
        description=description,
        sources=sources,
        window=_duration_message(window, "--window"),
        look_back_windows=look_back_windows,
        tracked_topics=tracked,
        thresholds=pb.SignalThresholds(min_topic_size=min_topic_size),
        webhook_url=webhook,
    )
    if grace:
        watch.grace.CopyFrom(_duration_message(grace, "--grace"))
    if shift_threshold is not None:
        watch.sentiment_shift_threshold = shift_threshold
    return pb.CreateWatchRequest(watch=watch)


def _when(timestamp) -> str:
    return timestamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def watch_lines(watch: pb.Watch) -> list[str]:
    """A watch: its schedule, its tracked topics, and the state of each source."""
    lines = [
        f"{watch.name}: windows of {watch.window.ToTimedelta()} (look-back {watch.look_back_windows}, grace "
        f"{watch.grace.ToTimedelta()}), next closes {_when(watch.next_window_end)} UTC; {watch.report_count} "
        f"report(s), {watch.post_count} post(s) held, latest alert {watch.last_alert_sequence or 'none'}",
    ]
    if watch.tracked_topics:
        tracked = ", ".join(
            topic.name + (f" ({', '.join(topic.terms)})" if topic.terms else "") for topic in watch.tracked_topics
        )
        lines.append(f"  tracking {tracked}; alert at a sentiment shift of {watch.sentiment_shift_threshold:.2f}")
    if watch.webhook_url:
        lines.append(f"  webhook {watch.webhook_url}")
    for source, status in zip(watch.sources, watch.source_statuses, strict=False):
        kind = source.WhichOneof("kind")
        where = {"push": "pushed", "drop_folder": source.drop_folder.path, "feed": source.feed.url}[kind]
        line = (
            f"  {source.name:<12} {where:<40} {SOURCE_STATE_NAMES.get(status.state, '?'):<8} "
            f"{status.accepted_posts} accepted, {status.duplicate_posts} duplicate, {status.rejected_posts} rejected"
        )
        lines.append(line)
        if status.last_error:
            lines.append(f"    last error: {status.last_error}")
        if status.last_rejection:
            lines.append(f"    last rejection: {status.last_rejection}")
    return lines


def alert_lines(alert: pb.WatchAlert, *, width: int = 100) -> list[str]:
    """One alert: sequence, time, type and summary, then what it is about."""
    webhook = WEBHOOK_STATE_NAMES.get(alert.webhook_state)
    lines = [
        f"#{alert.sequence} {_when(alert.create_time)} {alert.watch} {ALERT_TYPE_NAMES.get(alert.type, '?')}: "
        f"{alert.summary}" + (f" [{webhook}]" if webhook else "")
    ]
    if alert.type == pb.ALERT_TYPE_NEW_SIGNAL:
        lines += [f"    - {shorten(post.text, width)}" for post in alert.topic.representative_posts if post.text]
    return lines


def report_lines(report: pb.WatchReport, *, width: int = 100) -> list[str]:
    lines = [
        f"window {_when(report.window_start)} to {_when(report.window_end)} UTC: {report.window_post_count} "
        f"new post(s), {report.alert_count} alert(s)"
    ]
    for tracked in report.tracked_topics:
        lines.append(
            f"  {tracked.name}: {tracked.post_count} post(s), balance {tracked.balance:+.2f} against "
            f"{tracked.baseline_balance:+.2f} over {tracked.baseline_post_count} before (shift {tracked.shift:+.2f})"
        )
    failing = [status for status in report.source_statuses if status.state == pb.SOURCE_STATE_FAILING]
    lines += [f"  source {status.source} failing: {status.last_error}" for status in failing]
    lines += ["  " + line for line in signal_report(report.signals, show_noise=0, width=width - 2)]
    return lines


def to_watch_post(row: Row, *, id_field: str, time_field: str, source_field: str | None) -> pb.WatchPost:
    post = to_post(row, time_field=time_field, source_field=source_field)
    # Without an id in the file, the service identifies a post by its source, time and text.
    identifier = row.record.get(id_field)
    return pb.WatchPost(id=str(identifier or ""), text=post.text, time=post.time, source=post.source)


@listen.command("create-watch")
@click.argument("name")
@click.option("--window", default="1h", show_default=True, help="width of a window (e.g. 30s, 15m, 1h, 1d)")
@click.option("--look-back-windows", default=0, help="windows a report analyses (default 14)")
@click.option("--grace", help="wait after a window ends before closing it, for late posts (e.g. 1m)")
@click.option("--push", multiple=True, help="name of a push source (default: one named 'api' when no other source)")
@click.option("--drop-folder", "drop_folders", multiple=True, help="NAME=PATH of a folder of .jsonl files")
@click.option("--feed", "feeds", multiple=True, help="NAME=URL of an RSS or Atom feed")
@click.option("--poll", help="time between two reads of the folders and feeds (default 10s / 5m)")
@click.option("--track", multiple=True, help="tracked topic: NAME, or NAME=term,term (e.g. delivery=parcel,courier)")
@click.option("--webhook", default="", help="URL each alert is POSTed to")
@click.option("--min-topic-size", default=0, help="smallest topic in posts (default 5)")
@click.option("--shift-threshold", type=float, help="sentiment shift that raises an alert (default 0.3)")
@click.option("--description", default="")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def create_watch(name: str, **options) -> None:
    """Creates a listening watch."""
    fields = {key: options.pop(key) for key in list(options) if key in (watch_request.__kwdefaults__ or {})}
    request = watch_request(name, **fields)
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).CreateWatch(request)
    click.echo("\n".join(watch_lines(reply.watch)))


@listen.command("ingest")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option("--text-field", default="text", show_default=True)
@click.option("--time-field", default="time", show_default=True)
@click.option("--source-field", default="source", show_default=True, help="site, channel or account")
@click.option("--id-field", default="id", show_default=True)
@click.option("--source", "push_source", default="", help="push source of the watch (default: its only one)")
@click.option("--batch-size", default=500, show_default=True, help="posts per call (up to 1,000)")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def ingest(
    name: str,
    path: Path,
    file_format: str,
    text_field: str,
    time_field: str,
    source_field: str,
    id_field: str,
    push_source: str,
    batch_size: int,
    **options,
) -> None:
    """Pushes the posts of a CSV or JSONL file into a watch; the same post twice counts once."""
    rows = read_rows(path, file_format, text_field=text_field, id_field=id_field)
    posts = [to_watch_post(row, id_field=id_field, time_field=time_field, source_field=source_field) for row in rows]
    totals: Counter[str] = Counter()
    async with channel_from(options) as channel:
        stub = classification_pb2_grpc.ClassificationServiceStub(channel)
        for batch in batched(posts, batch_size):
            reply = await stub.IngestPosts(pb.IngestPostsRequest(watch=name, posts=batch, source=push_source))
            totals.update(accepted=reply.accepted, duplicates=reply.duplicates, late=reply.late)
    click.echo(
        f"{totals['accepted']} post(s) accepted, {totals['duplicates']} duplicate(s), "
        f"{totals['late']} late (their window had closed)"
    )


@listen.command("watch")
@click.argument("name", required=False, default="")
@click.option("--replay", is_flag=True, help="every stored alert first, then live ones")
@click.option("--after", "after_sequence", default=0, help="replay the alerts after this sequence first")
@click.option("--count", default=0, help="stop after this many alerts (default: follow until interrupted)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per alert")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def follow(name: str, replay: bool, after_sequence: int, count: int, as_json: bool, **options) -> None:
    """Follows a watch's alerts live (every watch of the tenant without NAME)."""
    request = pb.WatchAlertsRequest(watch=name, after_sequence=after_sequence, from_start=replay)
    seen = 0
    async with channel_from(options) as channel:
        stream = classification_pb2_grpc.ClassificationServiceStub(channel).WatchAlerts(request)
        async for reply in stream:
            if as_json:
                alert = json_format.MessageToDict(reply.alert, preserving_proto_field_name=True)
                click.echo(json.dumps(alert, ensure_ascii=False))
            else:
                click.echo("\n".join(alert_lines(reply.alert)))
            seen += 1
            if count and seen >= count:
                stream.cancel()
                break


@listen.command("watches")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def list_watches(**options) -> None:
    """Lists the tenant's watches with the state of their sources."""
    async with channel_from(options) as channel:
        stub = classification_pb2_grpc.ClassificationServiceStub(channel)
        token = ""
        while True:
            reply = await stub.ListWatches(pb.ListWatchesRequest(page_token=token))
            for watch in reply.watches:
                click.echo("\n".join(watch_lines(watch)))
            token = reply.next_page_token
            if not token:
                break


@listen.command("show")
@click.argument("name")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def show_watch(name: str, **options) -> None:
    """A watch: schedule, tracked topics, state of each source."""
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).GetWatch(pb.GetWatchRequest(name=name))
    click.echo("\n".join(watch_lines(reply.watch)))


@listen.command("reports")
@click.argument("name")
@click.option("--limit", default=3, show_default=True, help="latest windows shown")
@click.option("--json", "as_json", is_flag=True)
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def watch_reports(name: str, limit: int, as_json: bool, **options) -> None:
    """The latest window reports of a watch, newest first."""
    request = pb.ListWatchReportsRequest(watch=name, page_size=limit)
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).ListWatchReports(request)
    if as_json:
        click.echo(json.dumps(json_format.MessageToDict(reply, preserving_proto_field_name=True), ensure_ascii=False))
        return
    for report in reply.reports:
        click.echo("\n".join(report_lines(report)) + "\n")
    if reply.withheld_count:
        click.echo(f"{reply.withheld_count} report(s) withheld: their posts are above the declared data class")


@listen.command("delete-watch")
@click.argument("name")
@connection_options(DEFAULT_TARGET, purpose=WATCH_TARGET_PURPOSE)
@run_async
async def delete_watch(name: str, **options) -> None:
    """Deletes a watch with its posts, reports and alerts."""
    async with channel_from(options) as channel:
        reply = await classification_pb2_grpc.ClassificationServiceStub(channel).DeleteWatch(
            pb.DeleteWatchRequest(name=name)
        )
    click.echo(
        f"deleted {name}: {reply.deleted_posts} post(s), {reply.deleted_reports} report(s), "
        f"{reply.deleted_alerts} alert(s)"
    )
