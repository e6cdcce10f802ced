"""`matcha campaign ...` and `matcha outcomes ...`: experiment results and promotion, outcome ingestion."""

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
from google.protobuf import duration_pb2, json_format

from matcha.cli import campaign_loop as loop
from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.plans import parse_inputs
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.mesh import CONDUCTOR, REVIEW
from matcha.review.v1 import review_pb2, review_pb2_grpc

DEFAULT_TARGET = REVIEW.local_address
CONDUCTOR_TARGET = CONDUCTOR.local_address
OUTCOMES = [name.removeprefix("OUTCOME_TYPE_").lower() for name in review_pb2.OutcomeType.keys()[1:]]
BAR_WIDTH = 30


def _outcome_name(value: int) -> str:
    return review_pb2.OutcomeType.Name(value).removeprefix("OUTCOME_TYPE_").lower()


def _bar(low: float, rate: float, high: float, scale: float) -> str:
    """The rate as a bar of `#`, its interval as `-` beyond it, on a scale shared by every arm."""

    def cell(value: float) -> int:
        return min(BAR_WIDTH - 1, round(value / scale * (BAR_WIDTH - 1))) if scale else 0

    cells = [" "] * BAR_WIDTH
    for index in range(cell(low), cell(high) + 1):
        cells[index] = "-"
    for index in range(cell(rate) + 1 if rate > 0 else 0):
        cells[index] = "#"
    return "|" + "".join(cells) + "|"


def results_lines(reply: review_pb2.GetCampaignResultsResponse, outcome: str) -> list[str]:
    """Rates per arm with 95% intervals, lift over the holdout and probability of being best; a text chart."""
    experiment = reply.experiment
    lines = [
        f"experiment {experiment.id} {experiment.name!r}: {experiment.audience_size} customers, "
        f"holdout {experiment.holdout_share:.0%}, minimum {experiment.min_sample_per_arm} per arm "
        f"({'reached' if reply.minimum_sample_reached else 'not reached'})",
        f"winner: {reply.winner}" if reply.winner else "winner: none promoted",
    ]
    chosen = [next(rate for rate in arm.outcomes if rate.type == reply.outcome) for arm in reply.arms]
    lines.append(
        f"\n{'arm':<12} {'audience':>8} {outcome:>10} {'rate':>7} {'95% interval':>17} {'lift':>8} {'P(best)':>8}"
    )
    for arm, rate in zip(reply.arms, chosen, strict=True):
        lift = f"{arm.lift:+.1%}" if arm.HasField("lift") else "-"
        mark = " *" if arm.promoted else ""
        lines.append(
            f"{arm.arm:<12} {arm.audience:>8} {rate.customers:>10} {rate.rate:>7.2%} "
            f"{rate.ci_low:>8.2%}-{rate.ci_high:<8.2%} {lift:>8} {arm.probability_best:>8.1%}{mark}"
        )
    scale = max((rate.ci_high for rate in chosen), default=0.0)
    lines.append(f"\n{outcome} rate ('#' rate, '-' 95% interval; full width {scale:.1%})")
    for arm, rate in zip(reply.arms, chosen, strict=True):
        lines.append(f"{arm.arm:<12} {_bar(rate.ci_low, rate.rate, rate.ci_high, scale)} {rate.rate:.2%}")
    lines.append("\nother outcomes:")
    for arm in reply.arms:
        rates = ", ".join(
            f"{_outcome_name(rate.type)} {rate.rate:.1%}" for rate in arm.outcomes if rate.type != reply.outcome
        )
        lines.append(f"{arm.arm:<12} {rates}")
    return lines


@click.group()
def campaign() -> None:
    """Campaigns: start a campaign plan, then its experiments' results per variant and promotion of the winner."""


@campaign.command("start")
@click.argument("plan_name")
@click.option("--input", "pairs", multiple=True, help="plan input as key=value (repeatable)")
@connection_options(CONDUCTOR_TARGET)
@run_async
async def start(plan_name: str, pairs: tuple[str, ...], **options) -> None:
    """Start a campaign plan (segment-campaign, win-back, ...) and follow it to its review step: the variants
    that wait for a decision, and where to decide."""
    async with channel_from(options) as channel:
        conductor = conductor_pb2_grpc.ConductorServiceStub(channel)
        run_id = await loop.start_campaign(conductor, plan_name, parse_inputs(pairs))
        click.echo(f"run {run_id} of {plan_name}: drafting...")
        run = await loop.until(conductor, run_id, lambda run: run.state not in loop.ACTIVE, 3600)
    if run.state != conductor_pb2.RUN_STATE_WAITING:
        click.echo(f"run {run_id} {conductor_pb2.RunState.Name(run.state).removeprefix('RUN_STATE_').lower()}")
        click.echo(json_format.MessageToJson(run.outputs, indent=2))
        return
    click.echo("\n".join(loop.describe_drafts(loop.drafts_of(run))))
    click.echo(
        "\nthe run waits for a reviewer: decide on the review page (`matcha up` prints its link) or with "
        "`matcha review approve ITEM`;\nit then publishes the approved variants. Follow it with "
        f"`matcha run show {run_id}`."
    )


def series_lines(reply: review_pb2.GetCampaignResultsResponse, outcome: str) -> list[str]:
    """The chosen outcome over time: one row per bucket, the cumulative rate (and customers) of each arm."""
    if not reply.series:
        return []
    arms = [series.arm for series in reply.series]
    lines = ["", f"{outcome} over time (cumulative)", f"{'until':<17}" + "".join(f"{arm:>18}" for arm in arms)]
    for position, point in enumerate(reply.series[0].points):
        cells = [series.points[position] for series in reply.series]
        until = point.end_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
        lines.append(f"{until:<17}" + "".join(f"{cell.rate:>9.2%} {cell.customers:>7,}" for cell in cells))
    return lines


def _bucket(value: str) -> duration_pb2.Duration:
    """`30m`, `6h`, `1d`, `1w` as a duration."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = value[:-1], value[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise click.BadParameter("a number then m, h, d or w (30m, 6h, 1d, 1w)", param_hint="--bucket")
    return duration_pb2.Duration(seconds=int(number) * units[unit])


@campaign.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="newest experiments shown")
@connection_options(DEFAULT_TARGET)
@run_async
async def list_experiments(limit: int, **options) -> None:
    """The tenant's experiments, newest first: variants, holdout, audience and winner."""
    experiments: list[review_pb2.Experiment] = []
    token = ""
    async with channel_from(options) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        while len(experiments) < limit:
            page = await stub.ListExperiments(
                review_pb2.ListExperimentsRequest(page_size=min(200, limit - len(experiments)), page_token=token)
            )
            experiments.extend(page.experiments)
            token = page.next_page_token
            if not token:
                break
    if not experiments:
        click.echo("no experiment yet")
        return
    click.echo(f"{'created':<17} {'experiment':<38} {'variants':<12} {'holdout':>7} {'audience':>10}  winner")
    for experiment in experiments:
        created = experiment.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
        labels = ",".join(variant.label for variant in experiment.variants)
        click.echo(
            f"{created:<17} {experiment.id:<38} {labels:<12} {experiment.holdout_share:>7.0%} "
            f"{experiment.audience_size:>10,}  {experiment.promoted_variant or '-'}"
        )


@campaign.command("results")
@click.argument("experiment_id")
@click.option("--outcome", type=click.Choice(OUTCOMES), default="converted", show_default=True)
@click.option("--over-time", is_flag=True, help="also the outcome's cumulative rate per arm, bucket by bucket")
@click.option("--bucket", default="1d", show_default=True, help="width of a bucket: 30m, 6h, 1d, 1w")
@connection_options(DEFAULT_TARGET)
@run_async
async def results(experiment_id: str, outcome: str, over_time: bool, bucket: str, **options) -> None:
    """Rates per arm with 95% intervals, lift over the holdout, probability of being best."""
    width = _bucket(bucket)
    async with channel_from(options) as channel:
        reply = await review_pb2_grpc.ReviewServiceStub(channel).GetCampaignResults(
            review_pb2.GetCampaignResultsRequest(
                experiment_id=experiment_id,
                outcome=f"OUTCOME_TYPE_{outcome.upper()}",
                include_series=over_time,
                bucket=width,
            )
        )
    click.echo("\n".join(results_lines(reply, outcome) + series_lines(reply, outcome)))


@campaign.command("promote")
@click.argument("experiment_id")
@click.argument("variant")
@connection_options(DEFAULT_TARGET)
@run_async
async def promote(experiment_id: str, variant: str, **options) -> None:
    """Record VARIANT as the experiment's winner (refused before every arm has its minimum sample)."""
    async with channel_from(options) as channel:
        reply = await review_pb2_grpc.ReviewServiceStub(channel).PromoteVariant(
            review_pb2.PromoteVariantRequest(experiment_id=experiment_id, variant=variant)
        )
    again = " (already promoted)" if reply.already_promoted else ""
    click.echo(f"promoted {reply.experiment.promoted_variant} in {reply.experiment.id}{again}")


@click.group()
def outcomes() -> None:
    """Outcome events of published campaigns (delivered, opened, clicked, converted, unsubscribed)."""


def _rows(path: Path) -> Iterator[dict]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            yield from csv.DictReader(handle)
        return
    with path.open() as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _event(row: dict) -> review_pb2.OutcomeEvent:
    message = review_pb2.OutcomeEvent(
        event_id=str(row.get("event_id", "")),
        experiment_id=str(row.get("experiment_id") or ""),
        publication_id=str(row.get("publication_id") or ""),
        customer_id=str(row.get("customer_id", "")),
        type=f"OUTCOME_TYPE_{str(row.get('type', 'unspecified')).upper()}"
        if str(row.get("type", "")).lower() in OUTCOMES
        else review_pb2.OUTCOME_TYPE_UNSPECIFIED,
        value=float(row.get("value") or 0),
    )
    if row.get("time"):
        message.time.FromDatetime(datetime.fromisoformat(str(row["time"]).replace("Z", "+00:00")))
    return message


@outcomes.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@connection_options(DEFAULT_TARGET)
@run_async
async def ingest(file: Path, batch_size: int, **options) -> None:
    """Send FILE (JSON lines, or CSV when it ends in .csv) in batches; each batch is stored whole or refused.

    Fields: event_id, experiment_id or publication_id, customer_id, type, value (converted), time (ISO 8601)."""
    accepted = duplicates = sent = 0
    async with channel_from(options) as channel:
        stub = review_pb2_grpc.ReviewServiceStub(channel)
        batch: list[review_pb2.OutcomeEvent] = []

        async def send() -> None:
            nonlocal accepted, duplicates, sent
            try:
                reply = await stub.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=batch))
            except Exception:
                click.echo(
                    f"batch of lines {sent + 1}-{sent + len(batch)} refused; earlier batches are stored", err=True
                )
                raise
            accepted, duplicates, sent = accepted + reply.accepted, duplicates + reply.duplicates, sent + len(batch)
            click.echo(f"sent {sent} events ({accepted} stored, {duplicates} duplicates)", err=True)
            batch.clear()

        for row in _rows(file):
            batch.append(_event(row))
            if len(batch) == batch_size:
                await send()
        if batch:
            await send()
    click.echo(f"{accepted} events stored, {duplicates} duplicates ignored")
