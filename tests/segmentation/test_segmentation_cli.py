"""`matcha segment`: file ingestion, build, show and assign against a real server."""

import asyncio

from click.testing import CliRunner

from matcha.cli.segment import segment


async def test_ingest_build_show_assign(segmentation_server, issuer, tenant, tmp_path):
    csv = tmp_path / "transactions.csv"
    lines = ["id,customer_id,time,amount,quantity,item_id"]
    for customer in range(30):
        for purchase in range(1 + customer % 4):
            lines.append(
                f"t{customer}-{purchase},c{customer},2024-0{1 + purchase}-1{customer % 9},{10 + customer},1,cd"
            )
    csv.write_text("\n".join(lines) + "\n")
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst"])
    common = ["--target", f"127.0.0.1:{segmentation_server.port}", "--token", token]
    runner = CliRunner()

    def run(*arguments):
        result = runner.invoke(segment, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    ingested = await asyncio.to_thread(run, "ingest", str(csv), "--consent", "campaign")
    assert f"{len(lines) - 1} transactions stored, 0 already stored, 30 customers created" in ingested
    again = await asyncio.to_thread(run, "ingest", str(csv))
    assert f"0 transactions stored, {len(lines) - 1} already stored" in again

    built = await asyncio.to_thread(run, "build", "--name", "value", "--k", "2", "--seed", "3")
    assert "value v1  kmeans  30 customers" in built
    table = await asyncio.to_thread(run, "show", "value")
    assert table.splitlines()[0].startswith("value v1  kmeans  30 customers")
    assert len(table.splitlines()) == 2 + 2  # title, header, one line per segment

    assigned = await asyncio.to_thread(run, "assign", "value", "--customer", "c3")
    segment_ids = {line.split()[0] for line in table.splitlines()[2:]}
    assert assigned.split()[0] in segment_ids and "confidence" in assigned

    refused = await asyncio.to_thread(
        runner.invoke, segment, ["build", "--name", "value", "--k", "99", *common], catch_exceptions=False
    )
    assert refused.exit_code == 1 and "kmeans.k" in refused.output
