"""`matcha outcomes ingest`, `matcha campaign results` and `matcha campaign promote` against the review service."""

import asyncio
import csv
import json

from click.testing import CliRunner

from matcha.cli.main import cli
from matcha.review.v1 import review_pb2
from tests.review.test_review_experiments import arms_of, new_experiment


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_ingest_files_then_read_results_and_promote(review_server, review_for, issuer, tenant, tmp_path):
    customers = [f"c{index}" for index in range(400)]
    created, publisher = await new_experiment(review_for, tenant, customers, min_sample_per_arm=20)
    experiment_id = created.experiment.id
    arms = await arms_of(publisher, experiment_id, customers)
    lines = [
        {"event_id": f"d-{c}", "experiment_id": experiment_id, "customer_id": c, "type": "delivered"}
        for c in customers
        if arms[c] != "holdout"
    ]
    (tmp_path / "delivered.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with (tmp_path / "converted.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["event_id", "experiment_id", "customer_id", "type", "value", "time"])
        writer.writeheader()
        for c in customers:
            if arms[c] == "A" or (arms[c] == "B" and int(c[1:]) % 4 == 0):
                writer.writerow(
                    {"event_id": f"v-{c}", "experiment_id": experiment_id, "customer_id": c, "type": "converted",
                     "value": "20", "time": "2026-03-01T10:00:00Z"}
                )  # fmt: skip
    server = ["--target", f"127.0.0.1:{review_server.port}", "--tenant", tenant]
    operator = [*server, "--token", issuer.mint(subject="ops", tenant=tenant, roles=["operator"])]
    code, out, err = await invoke(
        "outcomes", "ingest", str(tmp_path / "delivered.jsonl"), "--batch-size", "100", *operator
    )
    assert code == 0, err
    assert f"{len(lines)} events stored, 0 duplicates" in out and "sent 100 events" in err
    code, out, _ = await invoke("outcomes", "ingest", str(tmp_path / "converted.csv"), *operator)
    assert code == 0 and "events stored" in out
    code, out, _ = await invoke("outcomes", "ingest", str(tmp_path / "delivered.jsonl"), *operator)
    assert code == 0 and f"0 events stored, {len(lines)} duplicates" in out

    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(json.dumps({"event_id": "s", "experiment_id": experiment_id, "customer_id": "x"}) + "\n")
    code, _, err = await invoke("outcomes", "ingest", str(stranger), *operator)
    assert code == 1 and "INVALID_ARGUMENT" in err and "events[0]" in err

    analyst = [*server, "--token", issuer.mint(subject="ana", tenant=tenant, roles=["analyst"])]
    code, out, _ = await invoke("campaign", "results", experiment_id, *analyst)
    assert code == 0 and "winner: none promoted" in out
    row = next(line for line in out.splitlines() if line.startswith("A "))
    assert "100.00%" in row  # every customer of A converted
    assert any(line.startswith("A ") and "|#" in line for line in out.splitlines())
    code, _, err = await invoke("campaign", "promote", experiment_id, "A", *analyst)
    assert code == 1 and "PERMISSION_DENIED" in err

    publisher_token = ["--token", issuer.mint(subject="pat", tenant=tenant, roles=["publisher"])]
    code, out, _ = await invoke("campaign", "promote", experiment_id, "A", *server, *publisher_token)
    assert code == 0 and f"promoted A in {experiment_id}" in out
    code, out, _ = await invoke("campaign", "results", experiment_id, "--outcome", "delivered", *analyst)
    assert code == 0 and "winner: A" in out
    results = await publisher.GetCampaignResults(review_pb2.GetCampaignResultsRequest(experiment_id=experiment_id))
    assert results.winner == "A"
