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
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator"])
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


async def test_items_and_recommend(segmentation_server, issuer, tenant, tmp_path):
    """Two groups of buyers; the CLI ingests the catalogue (CSV, vectors as JSON cells) and recommends."""
    transactions = tmp_path / "transactions.csv"
    lines = ["id,customer_id,time,amount,item_id"]
    for customer in range(12):
        basket = ["tea", "cups"] if customer < 6 else ["coffee", "grinder"]
        if customer == 0:
            basket = ["tea"]
        for day, item in enumerate(basket, start=1):
            lines.append(f"t{customer}-{item},c{customer},2024-03-0{day},{5 + customer},{item}")
    transactions.write_text("\n".join(lines) + "\n")
    catalogue = tmp_path / "items.csv"
    catalogue.write_text(
        "id,name,category,vector,origin\n"
        'tea,Sencha,drinks,"[1, 0]",Japan\n'
        'cups,Tea cups,tableware,"[0.9, 0.1]",\n'
        'coffee,Moka,drinks,"[0, 1]",Ethiopia\n'
        'grinder,Grinder,tools,"[0.1, 0.9]",\n'
    )
    token = issuer.mint(subject="cli", tenant=tenant, roles=["analyst", "author", "operator"])
    common = ["--target", f"127.0.0.1:{segmentation_server.port}", "--token", token]
    runner = CliRunner()

    def run(*arguments):
        result = runner.invoke(segment, [*arguments, *common], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    await asyncio.to_thread(run, "ingest", str(transactions), "--consent", "campaign")
    assert "4 items created, 0 replaced" in await asyncio.to_thread(run, "items", str(catalogue), "--model", "m")
    assert "0 items created, 4 replaced" in await asyncio.to_thread(run, "items", str(catalogue), "--model", "m")
    await asyncio.to_thread(run, "build", "--name", "cells", "--method", "rules")

    output = await asyncio.to_thread(run, "recommend", "c0", "--limit", "2")
    lines = output.splitlines()
    assert lines[0].startswith("cells v1 segment ")
    assert lines[1].split()[:2] == ["1.", "cups"] and "bought by 5 customers who bought Sencha" in lines[1]
    assert len(lines) == 3
    only = await asyncio.to_thread(run, "recommend", "c0", "--candidate", "grinder", "--exclude", "cups")
    assert [line.split()[1] for line in only.splitlines()[1:]] == ["grinder"]

    bad = tmp_path / "bad.csv"
    bad.write_text('id,vector\na,"[1, 2]"\nb,"[1, 2, 3]"\n')
    refused = await asyncio.to_thread(runner.invoke, segment, ["items", str(bad), *common], catch_exceptions=False)
    assert refused.exit_code == 1 and "items[1].vector" in refused.output
