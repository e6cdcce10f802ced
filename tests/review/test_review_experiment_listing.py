"""What the marketer's page reads: the tenant's experiments, newest first and paginated, through gRPC and the
gateway's GET /v1/experiments; and a campaign's chosen outcome over time, per arm and per bucket."""

from datetime import timedelta

import grpc
import httpx
from google.protobuf import duration_pb2, timestamp_pb2
from opentelemetry.sdk.trace import TracerProvider

from matcha.gateway.app import build_gateway
from matcha.gateway.settings import GatewaySettings
from matcha.review.app import SERVICE_NAME as REVIEW_SERVICE
from matcha.review.v1 import review_pb2
from tests.gateway.conftest import running_gateway
from tests.review.test_review_campaign_cli import invoke as invoke_cli
from tests.review.test_review_experiments import CONVERTED, OPENED, arms_of, event, new_experiment
from tests.support import refused


async def test_experiments_are_listed_newest_first_in_pages(review_for, tenant):
    created = []
    for index in range(3):
        # No holdout and one customer per arm: the oldest can be promoted (40 customers all in one variant has
        # a chance of 2 in 2^40).
        reply, publisher = await new_experiment(
            review_for, tenant, [f"c{index}-{n}" for n in range(40 + index)], holdout_share=0.0, min_sample_per_arm=1
        )
        created.append(reply.experiment)
    await publisher.PromoteVariant(review_pb2.PromoteVariantRequest(experiment_id=created[0].id, variant="A"))

    analyst = review_for(tenant, roles=("analyst",))
    first = await analyst.ListExperiments(review_pb2.ListExperimentsRequest(page_size=2))
    assert [row.id for row in first.experiments] == [created[2].id, created[1].id]
    assert first.next_page_token
    second = await analyst.ListExperiments(
        review_pb2.ListExperimentsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [row.id for row in second.experiments] == [created[0].id]
    assert second.next_page_token == ""

    newest = first.experiments[0]
    assert newest.name == "spring"
    assert [variant.label for variant in newest.variants] == ["A", "B"]
    assert [variant.publication_id for variant in newest.variants] == [
        variant.publication_id for variant in created[2].variants
    ]
    assert newest.holdout_share == 0.0
    assert newest.min_sample_per_arm == 1
    assert newest.audience_size == 42
    assert newest.create_time == created[2].create_time
    assert newest.promoted_variant == ""
    oldest = second.experiments[0]
    assert oldest.promoted_variant == "A" and oldest.promoter_subject == "pat"

    # Another tenant sees none of them.
    other = review_for(f"{tenant}-other", roles=("analyst",))
    assert not (await other.ListExperiments(review_pb2.ListExperimentsRequest())).experiments

    error = await refused(analyst.ListExperiments(review_pb2.ListExperimentsRequest(page_size=201)))
    assert "page_size" in error.field_violations
    error = await refused(analyst.ListExperiments(review_pb2.ListExperimentsRequest(page_token="not-a-token")))
    assert "page_token" in error.field_violations
    nobody = review_for(tenant, roles=())
    await refused(nobody.ListExperiments(review_pb2.ListExperimentsRequest()), grpc.StatusCode.PERMISSION_DENIED)


async def test_the_gateway_lists_experiments_at_v1_experiments(
    review_for, review_server, issuer, verifier, state_dir, tenant
):
    reply, _ = await new_experiment(review_for, tenant, ["c1", "c2", "c3"])
    backends = {REVIEW_SERVICE: f"127.0.0.1:{review_server.port}"}
    settings = GatewaySettings(state_dir=state_dir, gateway_backends=backends)
    headers = {"authorization": f"Bearer {issuer.mint(subject='ana', tenant=tenant, roles=['analyst'])}"}
    async with (
        running_gateway(build_gateway(settings, TracerProvider(), verifier)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers) as http,
    ):
        response = await http.get("/v1/experiments", params={"page_size": 10})
        series = await http.get(
            f"/v1/experiments/{reply.experiment.id}/results",
            params={"include_series": "true", "bucket": "3600s", "outcome": "OUTCOME_TYPE_OPENED"},
        )
    assert series.status_code == 200, series.text
    assert [arm["arm"] for arm in series.json()["series"]] == ["A", "B", "holdout"]
    assert response.status_code == 200, response.text
    listed = response.json()["experiments"]
    assert [row["id"] for row in listed] == [reply.experiment.id]
    assert listed[0]["variants"][0]["label"] == "A"
    assert int(listed[0]["audienceSize"]) == 3


def _at(moment) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_results_over_time_give_cumulative_customers_and_rates_per_bucket(review_for, tenant):
    customers = [f"c{index:03d}" for index in range(300)]
    created, publisher = await new_experiment(review_for, tenant, customers)
    experiment_id = created.experiment.id
    start = created.experiment.create_time.ToDatetime()
    arms = await arms_of(publisher, experiment_id, customers)
    # Conversions spread over three hours after creation; a second conversion of a customer is no new customer;
    # one timed before the experiment counts in the first bucket.
    converted_in_hour: dict[str, list[int]] = {"A": [0, 0, 0], "B": [0, 0, 0], "holdout": [0, 0, 0]}
    events = []
    for index, customer in enumerate(customers[:120]):
        hour = index % 3
        moment = start + timedelta(hours=hour, minutes=10)
        if index == 0:
            moment = start - timedelta(hours=5)
        events.append(event(f"c-{customer}", experiment_id, customer, CONVERTED, value=1.0, time=_at(moment)))
        converted_in_hour[arms[customer]][hour] += 1
    events.append(
        event("again", experiment_id, customers[0], CONVERTED, value=1.0, time=_at(start + timedelta(hours=2)))
    )
    events.append(event("open", experiment_id, customers[200], OPENED, time=_at(start + timedelta(minutes=1))))
    await review_for(tenant, roles=("operator",)).IngestOutcomes(review_pb2.IngestOutcomesRequest(events=events))

    analyst = review_for(tenant, roles=("analyst",))
    results = await analyst.GetCampaignResults(
        review_pb2.GetCampaignResultsRequest(
            experiment_id=experiment_id, include_series=True, bucket=duration_pb2.Duration(seconds=3600)
        )
    )
    assert [series.arm for series in results.series] == [arm.arm for arm in results.arms] == ["A", "B", "holdout"]
    audience = {arm.arm: arm.audience for arm in results.arms}
    for series in results.series:
        # Up to now (the experiment is seconds old) or the latest outcome, 2 h 10 min after creation: 3 buckets.
        assert len(series.points) == 3
        expected = 0
        for hour, point in enumerate(series.points):
            expected += converted_in_hour[series.arm][hour]
            assert point.start_time.ToDatetime() == start + timedelta(hours=hour)
            assert point.end_time.ToDatetime() == start + timedelta(hours=hour + 1)
            assert point.customers == expected
            assert abs(point.rate - expected / audience[series.arm]) < 1e-12
        arm = next(arm for arm in results.arms if arm.arm == series.arm)
        final = next(rate for rate in arm.outcomes if rate.type == CONVERTED)
        assert series.points[-1].customers == final.customers

    # One day by default: a single bucket; no series unless asked for.
    daily = await analyst.GetCampaignResults(
        review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id, include_series=True)
    )
    assert [len(series.points) for series in daily.series] == [1, 1, 1]
    assert daily.series[0].points[0].end_time.ToDatetime() == start + timedelta(days=1)
    plain = await analyst.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert not plain.series

    for seconds in (59, 367 * 86400):
        error = await refused(
            analyst.GetCampaignResults(
                review_pb2.GetCampaignResultsRequest(
                    experiment_id=experiment_id, include_series=True, bucket=duration_pb2.Duration(seconds=seconds)
                )
            )
        )
        assert "bucket" in error.field_violations
    # An outcome timed a week ahead makes 10,081 one-minute buckets: too many, the caller is told to widen them.
    await review_for(tenant, roles=("operator",)).IngestOutcomes(
        review_pb2.IngestOutcomesRequest(
            events=[event("late", experiment_id, customers[299], OPENED, time=_at(start + timedelta(days=7)))]
        )
    )
    error = await refused(
        analyst.GetCampaignResults(
            review_pb2.GetCampaignResultsRequest(
                experiment_id=experiment_id,
                outcome=OPENED,
                include_series=True,
                bucket=duration_pb2.Duration(seconds=60),
            )
        )
    )
    assert "bucket" in error.field_violations


async def test_the_cli_lists_experiments_and_shows_results_over_time(review_server, review_for, issuer, tenant):
    created, publisher = await new_experiment(review_for, tenant, [f"c{n}" for n in range(40)])
    experiment_id = created.experiment.id
    start = created.experiment.create_time.ToDatetime()
    arms = await arms_of(publisher, experiment_id, [f"c{n}" for n in range(40)])
    converters = [c for c in arms if arms[c] == "A"][:3]
    await review_for(tenant, roles=("operator",)).IngestOutcomes(
        review_pb2.IngestOutcomesRequest(
            events=[
                event(f"v-{c}", experiment_id, c, CONVERTED, value=5.0, time=_at(start + timedelta(hours=index)))
                for index, c in enumerate(converters)
            ]
        )
    )
    analyst = ["--target", f"127.0.0.1:{review_server.port}"]
    analyst += ["--token", issuer.mint(subject="ana", tenant=tenant, roles=["analyst"])]

    code, out, err = await invoke_cli("campaign", "list", *analyst)
    assert code == 0, err
    assert experiment_id in out and "A,B" in out and "10%" in out and " 40 " in out

    code, out, err = await invoke_cli("campaign", "results", experiment_id, "--over-time", "--bucket", "1h", *analyst)
    assert code == 0, err
    assert "converted over time (cumulative)" in out
    rows = out.split("converted over time (cumulative)")[1].strip().splitlines()[1:]
    assert len(rows) == 3  # three hours of conversions
    audience_a = sum(1 for arm in arms.values() if arm == "A")
    assert rows[-1].split()[2:4] == [f"{3 / audience_a:.2%}", "3"]

    code, _, err = await invoke_cli("campaign", "results", experiment_id, "--over-time", "--bucket", "2x", *analyst)
    assert code != 0 and "--bucket" in err
