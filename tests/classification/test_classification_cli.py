"""`matcha classify`, `matcha classifier` and `matcha listen` against a real classification server."""

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from matcha.classification import datasets
from matcha.cli.classify import classifier, classify, listen, load_labels, parse_duration, sparkline

LABELS_YAML = """
threshold: 0.5
labels:
  - name: delivery
    description: parcels arriving late, lost or damaged in transit
    examples: ["My parcel never arrived", "The courier left the box in the rain"]
  - name: billing
    description: invoices, refunds, being charged twice
  - name: staff
"""
CUSTOMER_TEXTS = [
    ("m1", "The parcel arrived two weeks late and the box was crushed."),
    ("m2", "I was charged twice for the same invoice and still have no refund."),
    ("m3", "Absolutely love this coffee, best I have had in years!"),
]


@pytest.fixture
def invoke(classification_server, issuer, tenant):
    # Deleting a classifier is the admin's (matcha.runtime.roles); the other commands need less.
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator", "admin"])
    common = ["--target", f"127.0.0.1:{classification_server.port}", "--token", token]
    runner = CliRunner()

    async def run(command, *arguments, exit_code=0):
        result = await asyncio.to_thread(runner.invoke, command, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == exit_code, result.output
        return result.output

    return run


def write_csv(path, fieldnames, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_classify_a_csv_with_sentiment_and_topics(invoke, tmp_path):
    messages = write_csv(tmp_path / "messages.csv", ["id", "body"], [{"id": i, "body": t} for i, t in CUSTOMER_TEXTS])
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS_YAML)
    tasks = ["--task", "sentiment", "--task", f"topics:{labels}", "--text-field", "body"]

    table = await invoke(classify, str(messages), *tasks)
    lines = table.splitlines()
    assert lines[0].startswith("The parcel arrived two weeks late") and "delivery" in lines[0]
    assert "billing" in lines[1] and "negative" in lines[1]
    assert "positive" in lines[2]
    assert any(line.startswith("sentiment: ") for line in lines)
    assert any(line.startswith("topics: delivery 1 (33%)") or "delivery 1 (33%)" in line for line in lines)
    assert lines[-1].startswith("models: sentence-transformers/all-MiniLM-L6-v2")

    output = await invoke(classify, str(messages), *tasks, "--json")
    results = [json.loads(line) for line in output.splitlines()]
    assert [result["id"] for result in results] == ["m1", "m2", "m3"]
    assert results[0]["language"] == "en"
    assigned = [{s["label"] for s in result["topics"]["labels"] if s.get("assigned")} for result in results]
    assert assigned[0] == {"delivery"} and "billing" in assigned[1]
    assert [result["sentiment"]["label"] for result in results] == [
        "SENTIMENT_NEGATIVE",
        "SENTIMENT_NEGATIVE",
        "SENTIMENT_POSITIVE",
    ]


async def test_classify_text_lines_and_refusals(invoke, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("Great product, fast delivery.\n\nTerrible customer service, never again.\n")
    output = await invoke(classify, str(lines), "--task", "sentiment", "--json")
    results = [json.loads(line) for line in output.splitlines()]
    assert [result["id"] for result in results] == ["line-1", "line-3"]

    refused = await invoke(classify, str(lines), "--task", "custom:no-such-model", exit_code=1)
    assert "NOT_FOUND" in refused and "CLASSIFIER_NOT_FOUND" in refused
    bad_task = await invoke(classify, str(lines), "--task", "emotions", exit_code=2)
    assert "sentiment, topics:<labels.yaml> or custom:<classifier>" in bad_task


def test_labels_files_in_every_shape(tmp_path):
    shapes = {
        "list.yaml": "- delivery\n- {name: billing, description: invoices}\n",
        "mapping.yaml": "delivery:\nbilling: invoices\nstaff: {examples: [rude staff]}\n",
    }
    for name, text in shapes.items():
        (tmp_path / name).write_text(text)
    listed = load_labels(tmp_path / "list.yaml")
    assert [(label.name, label.description) for label in listed.labels] == [("delivery", ""), ("billing", "invoices")]
    assert not listed.HasField("threshold")
    mapped = load_labels(tmp_path / "mapping.yaml")
    assert [label.name for label in mapped.labels] == ["delivery", "billing", "staff"]
    assert list(mapped.labels[2].examples) == ["rude staff"]


def reviews_file(path, items):
    return write_csv(
        path,
        ["id", "review", "verdict"],
        [{"id": f"r{index}", "review": item.text, "verdict": item.label} for index, item in enumerate(items)],
    )


async def test_classifier_train_evaluate_list_delete(invoke, tmp_path):
    reviews = [item for item in datasets.rotten_tomatoes() if item.label != "neutral"]
    train_items = [item for item in reviews if not datasets.is_held_out(item)]
    test_items = [item for item in reviews if datasets.is_held_out(item)]

    def first(items, count):
        return [item for label in ("positive", "negative") for item in [i for i in items if i.label == label][:count]]

    training = reviews_file(tmp_path / "train.csv", first(train_items, 40))
    evaluation = reviews_file(tmp_path / "eval.csv", first(test_items, 15))
    fields = ["--text-field", "review", "--label-field", "verdict"]

    trained = await invoke(classifier, "train", "--name", "verdicts", str(training), *fields, "--holdout", "0.25")
    assert trained.startswith("verdicts v1 trained on 80 examples (negative, positive)")
    assert "20 examples  accuracy" in trained  # a quarter held out
    assert "confusion (rows: true, columns: predicted)" in trained
    lines = trained.splitlines()
    header = lines.index("  confusion (rows: true, columns: predicted)")
    assert [line.split()[0] for line in lines[header - 2 : header]] == ["negative", "positive"]  # P/R/F1 rows
    assert lines[header + 1].split() == ["negative", "positive"]
    confusion = [line.split() for line in lines[header + 2 :]]
    assert [row[0] for row in confusion] == ["negative", "positive"]
    assert sum(int(count) for row in confusion for count in row[1:]) == 20

    listed = await invoke(classifier, "list")
    assert listed.startswith("verdicts v1  2 labels  80 examples  holdout accuracy")
    shown = await invoke(classifier, "show", "verdicts")
    assert "training set sha256" in shown and "sentence-transformers/all-MiniLM-L6-v2" in shown

    evaluated = await invoke(classifier, "evaluate", "verdicts", str(evaluation), *fields)
    assert evaluated.splitlines()[0] == "verdicts v1 on eval.csv:"
    accuracy = float(evaluated.splitlines()[1].split("accuracy")[1].split()[0])
    assert accuracy >= 0.6  # 80 critics' snippets are enough to beat chance on unseen movies

    custom = await invoke(classify, str(evaluation), "--task", "custom:verdicts@1", "--text-field", "review")
    assert "verdicts: " in custom and any(line.startswith("verdicts: ") for line in custom.splitlines())

    refused = await invoke(classifier, "evaluate", "verdicts", str(training), "--text-field", "review", exit_code=1)
    assert "label" in refused  # every record lacks the default label column
    assert "1 version(s) deleted" in await invoke(classifier, "delete", "verdicts")
    assert (await invoke(classifier, "list")).strip() == "no classifiers"
    gone = await invoke(classifier, "show", "verdicts", exit_code=1)
    assert "NOT_FOUND" in gone


END = datetime(2020, 3, 16, tzinfo=UTC)
DAYS = 10
RECALL = [
    "Recall of oat milk cartons after customers report a sour taste",
    "Supermarket pulls oat milk from shelves over contamination fears",
    "Oat milk maker apologises as recall widens to more stores",
    "Shoppers asked to return oat milk bought since March",
    "Oat milk recall: what customers need to know about refunds",
    "Oat milk brand faces questions as recall spreads across the country",
    "Cafes drop oat milk amid recall of contaminated cartons",
    "Oat milk recall prompts food safety inquiry",
    "Refunds offered on recalled oat milk cartons",
]
RECALL_DAYS = [6, 7, 7, 8, 8, 9, 9, 9, 9]


async def test_listen_reports_an_emerging_topic(invoke, tmp_path):
    """Ten days of real headlines, and a product recall growing over the last four days."""
    rows = [
        {"id": item.id, "text": item.text, "published": item.time.isoformat(), "site": "guardian"}
        for item in datasets.guardian_headlines()
        if END - timedelta(days=DAYS) <= item.time < END
    ]
    for index, (text, day) in enumerate(zip(RECALL, RECALL_DAYS, strict=True)):
        when = END - timedelta(days=DAYS - day) + timedelta(hours=index)
        rows.append({"id": f"recall-{index}", "text": text, "published": when.isoformat(), "site": f"s{index % 3}"})
    posts = write_csv(tmp_path / "posts.csv", ["id", "text", "published", "site"], rows)
    options = ["--window", "1d", "--lookback", f"{DAYS}d", "--end", END.isoformat(), "--time-field", "published"]

    report = await invoke(listen, str(posts), *options, "--source-field", "site", "--seed", "1")
    lines = report.splitlines()
    assert lines[0].startswith(f"{len(rows)} posts from 2020-03-06 00:00 to 2020-03-16 00:00 UTC")
    headers = [line for line in lines if line.split(" (")[0] in ("STRONG", "WEAK", "NOISE")]
    assert [header.split()[0] for header in headers] == ["STRONG", "WEAK", "NOISE"]
    weak = lines[lines.index(headers[1]) + 1 : lines.index(headers[2])]
    recall = next(index for index, line in enumerate(weak) if "oat" in line and "milk" in line)
    details = "\n".join(weak[recall : recall + 7])
    assert "first seen 2020-03-12" in details and "3 source(s)" in details
    assert "sentiment " in details and "% negative" in details and "shift " in details
    assert "- " in details and "milk" in details.split("- ", 1)[1].lower()

    reply = json.loads(await invoke(listen, str(posts), *options, "--skip-sentiment", "--json"))
    assert reply["post_count"] == len(rows)
    assert all("sentiment_mix" not in topic for topic in reply["topics"])

    refused = await invoke(listen, str(posts), "--time-field", "published", "--lookback", "2d", exit_code=1)
    assert "INVALID_ARGUMENT" in refused and "look_back" in refused


def test_durations_and_sparklines():
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert sparkline([0, 1, 2, 4]) == " ▂▄█"
    assert sparkline([0, 0]) == "  "
