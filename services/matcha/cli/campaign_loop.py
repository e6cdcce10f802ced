"""The campaign loop from a terminal: start a campaign plan, follow it to its review step, and once the
approved variants are published to their arms, read the experiments the run made.

Used by `matcha campaign start` and by `make demo`, which also plays the reviewer and an outcome stream
(both clearly labelled) so that the whole loop runs unattended.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
from google.protobuf import json_format, struct_pb2

from matcha.cli.generate import format_quality
from matcha.conductor.v1 import conductor_pb2
from matcha.review.v1 import review_pb2
from matcha.segmentation.v1 import segmentation_pb2

ACTIVE = (conductor_pb2.RUN_STATE_PENDING, conductor_pb2.RUN_STATE_RUNNING)
MEMBERS_PAGE = 1000


@dataclass
class Draft:
    """One variant of one segment as the run submitted it."""

    segment_id: str
    segment_name: str
    variant: str
    item_id: str
    text: str
    voice_score: float
    quality: str  # one line of scores
    flags: list[str]


@dataclass(frozen=True)
class RunExperiment:
    """The experiment a `segment-campaign` run made for one segment (its `experiments` output)."""

    segment_id: str
    experiment_id: str


async def start_campaign(conductor, plan: str, inputs: dict) -> str:
    request = conductor_pb2.StartRunRequest(plan_name=plan)
    json_format.ParseDict(inputs, request.inputs)
    return (await conductor.StartRun(request)).run.id


async def until(conductor, run_id: str, done: Callable[[conductor_pb2.Run], bool], timeout_seconds: float):
    """Polls the run until `done`; a run that ends otherwise is an error naming its state and reason."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        run = (await conductor.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))).run
        if done(run):
            return run
        if run.state not in (*ACTIVE, conductor_pb2.RUN_STATE_WAITING):
            raise click.ClickException(
                f"run {run_id} ended {conductor_pb2.RunState.Name(run.state)}: {run.error.message}"
            )
        await asyncio.sleep(0.5)
    raise click.ClickException(f"run {run_id} did not get there in {timeout_seconds:.0f}s")


def _json_value(value: struct_pb2.Value) -> Any:
    # Any JSON value (a step's output here is a list), though the stubs type every result as a dict.
    json_value: Any = json_format.MessageToDict(value)
    return json_value


def drafts_of(run: conductor_pb2.Run) -> list[Draft]:
    """The variants a `segment-campaign` or `win-back` run drafted and submitted, in order."""
    steps = {step.step_id: step for step in run.steps}
    drafted = _json_value(steps["draft"].output)
    # `segment-campaign` submits with the segment and variant beside each item id; `win-back`, the id alone.
    item_ids = [entry["item_id"] if isinstance(entry, dict) else entry for entry in _json_value(steps["submit"].output)]
    return [
        Draft(
            segment_id=draft["segment"]["id"],
            segment_name=draft["segment"].get("name", draft["segment"]["id"]),
            variant=draft["variant"],
            item_id=item_id,
            text=draft["draft"]["text"],
            voice_score=float(draft["draft"].get("quality", {}).get("voice_score", 0.0)),
            quality=format_quality(draft["draft"]),
            flags=[flag["code"] for flag in draft["draft"].get("flags", [])],
        )
        for draft, item_id in zip(drafted, item_ids, strict=True)
    ]


def describe_drafts(drafts: list[Draft]) -> Iterable[str]:
    for draft in drafts:
        yield f"segment {draft.segment_name!r}, variant {draft.variant}: review item {draft.item_id}"
        yield f"  {draft.quality}; flags: {', '.join(draft.flags) or 'none'}"
        yield from (f"  | {line}" for line in draft.text.strip().splitlines())


async def segment_members(segmentation, name: str, version: int, segment_id: str) -> list[str]:
    members: list[str] = []
    token = ""
    while True:
        page = await segmentation.ListSegmentMembers(
            segmentation_pb2.ListSegmentMembersRequest(
                name=name, version=version, segment_id=segment_id, page_size=MEMBERS_PAGE, page_token=token
            )
        )
        members.extend(member.customer_id for member in page.members)
        token = page.next_page_token
        if not token:
            return members


def experiments_of(run: conductor_pb2.Run) -> list[RunExperiment]:
    """The experiments a finished `segment-campaign` run made, one per segment with an approved variant."""
    outputs = json_format.MessageToDict(run.outputs)
    return [RunExperiment(entry["segment"], entry["experiment_id"]) for entry in outputs.get("experiments", [])]


# The demo's outcome model (simulated, fixed seed): an e-mail reaches 97% of its audience; the variant's
# open rate is drawn once around 30%, a click follows an open with probability 12%, a conversion follows a
# click with probability 30%, and anyone, holdout included, buys on their own with probability 0.4%;
# orders are log-normal around 15 (median); 0.3% of those reached unsubscribe.
DELIVERY, OPEN_BASE, CLICK_GIVEN_OPEN, CONVERT_GIVEN_CLICK, ORGANIC, UNSUBSCRIBE = 0.97, 0.30, 0.12, 0.30, 0.004, 0.003


def simulated_outcomes(
    experiment: review_pb2.Experiment, arms: dict[str, str], seed: int, start: float, end: float
) -> list[review_pb2.OutcomeEvent]:
    """Outcome events for each customer's arm (`arms`: customer id -> variant label or 'holdout'),
    reproducible for the seed; the first hour after sending is played between `start` and `end` (seconds)."""
    rng = np.random.default_rng(seed)
    open_rates = {variant.label: OPEN_BASE * rng.uniform(0.75, 1.3) for variant in experiment.variants}
    events: list[review_pb2.OutcomeEvent] = []
    pace = (end - start) / 3600

    def add(customer: str, outcome: review_pb2.OutcomeType, offset_seconds: float, value: float = 0.0) -> None:
        event = review_pb2.OutcomeEvent(
            event_id=f"sim-{experiment.id}-{len(events)}",
            experiment_id=experiment.id,
            customer_id=customer,
            type=outcome,
            value=value,
        )
        event.time.FromNanoseconds(int((start + offset_seconds * pace) * 1e9))
        events.append(event)

    for customer, arm in arms.items():
        converted = rng.random() < ORGANIC
        if arm != "holdout" and rng.random() < DELIVERY:
            add(customer, review_pb2.OUTCOME_TYPE_DELIVERED, rng.uniform(0, 60))
            if rng.random() < open_rates[arm]:
                add(customer, review_pb2.OUTCOME_TYPE_OPENED, rng.uniform(60, 1800))
                if rng.random() < CLICK_GIVEN_OPEN:
                    add(customer, review_pb2.OUTCOME_TYPE_CLICKED, rng.uniform(1800, 2400))
                    converted = converted or rng.random() < CONVERT_GIVEN_CLICK
            if rng.random() < UNSUBSCRIBE:
                add(customer, review_pb2.OUTCOME_TYPE_UNSUBSCRIBED, rng.uniform(60, 3000))
        if converted:
            add(customer, review_pb2.OUTCOME_TYPE_CONVERTED, rng.uniform(2400, 3500), round(rng.lognormal(2.7, 0.5), 2))
    return events


async def ingest_outcomes(review, events: list[review_pb2.OutcomeEvent], batch: int = 10_000) -> int:
    accepted = 0
    for start in range(0, len(events), batch):
        reply = await review.IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events[start : start + batch]))
        accepted += reply.accepted
    return accepted


async def arms_of(review, experiment_id: str, customers: list[str]) -> dict[str, str]:
    """The recorded arm of each customer in the experiment's audience (those outside it are left out)."""
    arms: dict[str, str] = {}
    for start in range(0, len(customers), 10_000):
        reply = await review.AssignVariants(
            review_pb2.AssignVariantsRequest(
                experiment_id=experiment_id, customer_ids=customers[start : start + 10_000]
            )
        )
        arms.update({assignment.customer_id: assignment.arm for assignment in reply.assignments if assignment.arm})
    return arms


async def wait_for(probe: Callable[[], Awaitable[bool]], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.5)
    return False
