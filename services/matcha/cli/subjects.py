"""`matcha data-map SUBJECT`: what every store holds about one data subject (an access request)."""

import json

import click
from google.protobuf import json_format

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.plans import print_accesses
from matcha.common.v1 import common_pb2
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.mesh import CONDUCTOR

DEFAULT_TARGET = CONDUCTOR.local_address
COLUMNS = ("store", "kind", "scope", "count", "class", "purposes", "exported")


def _rows(reply: conductor_pb2.GetDataMapResponse) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for store in reply.stores:
        name = store.store.rsplit(".", 1)[-1]
        if store.status.code:
            rows.append((name, f"not answered: {store.status.message or store.status.code}", "", "", "", "", ""))
            continue
        for holding in store.holdings:
            exported = str(len(holding.records))
            if holding.truncated:
                exported += " (truncated)"
            if holding.withheld:
                exported += f", {holding.withheld} withheld"
            data_class = common_pb2.DataClass.Name(holding.highest_data_class).removeprefix("DATA_CLASS_")
            purposes = ",".join(holding.purposes) or "-"
            rows.append((name, holding.kind, holding.scope, str(holding.count), data_class, purposes, exported))
        if not store.holdings:
            rows.append((name, "nothing", "", "", "", "", ""))
    return rows


@click.command("data-map")
@click.argument("subject_id")
@click.option("--json", "as_json", is_flag=True, help="the whole answer as JSON, the exported records included")
@connection_options(DEFAULT_TARGET, purpose="data-map", data_class="PERSONAL")
@run_async
async def data_map(subject_id: str, as_json: bool, **options) -> None:
    """What every store holds about SUBJECT_ID: per kind of record, how many, the highest class and the purposes;
    with --json, the records themselves (records above --data-class are counted as withheld). Needs the auditor
    or admin role."""
    async with channel_from(options) as channel:
        reply = await conductor_pb2_grpc.ConductorServiceStub(channel).GetDataMap(
            conductor_pb2.GetDataMapRequest(subject_id=subject_id)
        )
    if as_json:
        document = json_format.MessageToDict(reply, preserving_proto_field_name=True)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        rows = [COLUMNS, *_rows(reply)]
        widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
        for row in rows:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        click.echo(f"\naccesses to its records on the record (all of them: matcha audit who-accessed {subject_id}):")
        print_accesses(reply.accesses)
    if not reply.complete:
        raise click.ClickException("some stores did not answer; the map is incomplete (repeat the command)")
