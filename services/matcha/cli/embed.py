"""`matcha embed ...`: collections, file ingestion with a progress bar, search."""

import asyncio
import hashlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import grpc
from google.protobuf import struct_pb2
from tqdm import tqdm

from matcha.cli.connection import channel_from, connection_options, run_async
from matcha.cli.records import batched, metadata_filter, read_records
from matcha.common.v1 import common_pb2
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.mesh import EMBEDDING
from matcha.runtime.governance import DataClass
from matcha.runtime.messages import data_class_message

DEFAULT_TARGET = EMBEDDING.local_address


@dataclass
class IngestTotals:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, reply: embedding_pb2.UpsertResponse) -> None:
        self.inserted += reply.inserted
        self.updated += reply.updated
        self.unchanged += reply.unchanged


def to_document(
    record: dict[str, Any],
    *,
    id_field: str,
    text_field: str,
    subject_field: str | None,
    data_class: DataClass,
    purposes: list[str],
    source: str,
) -> embedding_pb2.Document:
    text = str(record.get(text_field) or "")
    # Without an id column the record's digest is the id, so re-ingesting a file is idempotent.
    document_id = str(
        record.get(id_field)
        or hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]
    )
    reserved = {id_field, text_field, subject_field}
    metadata = struct_pb2.Struct()
    metadata.update({key: value for key, value in record.items() if key not in reserved and value is not None})
    return embedding_pb2.Document(
        id=document_id,
        text=text,
        metadata=metadata,
        policy=common_pb2.RecordPolicy(
            data_class=data_class_message(data_class),
            consented_purposes=purposes,
            source=source,
            subject_id=str(record.get(subject_field) or "") if subject_field else "",
        ),
    )


def unique_by_id(documents: Iterable[embedding_pb2.Document]) -> list[embedding_pb2.Document]:
    """Keeps the last of several records with one id, as the store would."""
    return list({document.id: document for document in documents}.values())


async def ingest(
    stub: embedding_pb2_grpc.EmbeddingServiceStub,
    collection: str,
    documents: Iterable[embedding_pb2.Document],
    *,
    total: int | None,
    batch_size: int = 64,
    concurrency: int = 4,
    progress: bool = True,
) -> IngestTotals:
    """Upserts documents in batches, several in flight so the service can batch across them."""
    totals = IngestTotals()
    slots = asyncio.Semaphore(concurrency)
    bar = tqdm(total=total, unit="doc", desc=f"ingest {collection}", disable=not progress)

    async def send(batch: list[embedding_pb2.Document]) -> None:
        try:
            reply = await stub.Upsert(embedding_pb2.UpsertRequest(collection=collection, documents=batch))
            totals.add(reply)
            bar.update(len(batch))
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            for batch in batched(documents, batch_size):
                await slots.acquire()
                group.create_task(send(batch))
    except* grpc.RpcError as failures:
        raise failures.exceptions[0] from None  # the first refusal says what is wrong
    finally:
        bar.close()
    return totals


async def ensure_collection(stub, name: str, description: str = "") -> None:
    existing = await stub.ListCollections(embedding_pb2.ListCollectionsRequest())
    if name not in {collection.name for collection in existing.collections}:
        await stub.CreateCollection(embedding_pb2.CreateCollectionRequest(name=name, description=description))


def format_results(reply: embedding_pb2.SearchResponse, width: int = 100) -> list[str]:
    lines = []
    for rank, result in enumerate(reply.results, start=1):
        text = " ".join(result.text.split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        lines.append(f"  {rank:>2}. {result.score:.3f}  {text}")
    return lines or ["  (no results)"]


@click.group()
def embed() -> None:
    """Embedding collections: ingest files, search them."""


@embed.command("collections")
@connection_options(DEFAULT_TARGET)
@run_async
async def list_collections(**options) -> None:
    """List the tenant's collections."""
    async with channel_from(options) as channel:
        reply = await embedding_pb2_grpc.EmbeddingServiceStub(channel).ListCollections(
            embedding_pb2.ListCollectionsRequest()
        )
    for collection in reply.collections:
        click.echo(f"{collection.name}\t{collection.document_count} documents\t{collection.model.id}")


@embed.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", required=True)
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto")
@click.option("--id-field", default="id", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--subject-field", help="column naming the data subject (enables erasure)")
@click.option(
    "--record-class",
    type=click.Choice([m.name for m in DataClass], case_sensitive=False),
    help="data class of the records (default: the declared --data-class)",
)
@click.option("--consent", "purposes", multiple=True, help="consented purpose (repeatable)")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--concurrency", default=4, show_default=True)
@click.option("--limit", type=int, help="ingest at most this many records")
@connection_options(DEFAULT_TARGET)
@run_async
async def ingest_file(
    path: Path,
    collection: str,
    file_format: str,
    id_field: str,
    text_field: str,
    subject_field: str | None,
    record_class: str | None,
    purposes: tuple[str, ...],
    batch_size: int,
    concurrency: int,
    limit: int | None,
    **options,
) -> None:
    """Ingest a CSV or JSONL file into a collection (created if missing)."""
    records = list(itertools.islice(read_records(path, file_format), limit))
    data_class = DataClass[(record_class or options["data_class"]).upper()]
    documents = unique_by_id(
        to_document(
            record,
            id_field=id_field,
            text_field=text_field,
            subject_field=subject_field,
            data_class=data_class,
            purposes=list(purposes),
            source=path.name,
        )
        for record in records
    )
    async with channel_from(options) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        await ensure_collection(stub, collection, f"ingested from {path.name}")
        totals = await ingest(
            stub, collection, documents, total=len(documents), batch_size=batch_size, concurrency=concurrency
        )
    click.echo(f"{collection}: {totals.inserted} inserted, {totals.updated} updated, {totals.unchanged} unchanged")


@embed.command("search")
@click.argument("collection")
@click.argument("query")
@click.option("--top-k", default=5, show_default=True)
@click.option("--filter", "filter_json", help='metadata filter, e.g. \'{"category": "fresh"}\'')
@connection_options(DEFAULT_TARGET)
@run_async
async def search(collection: str, query: str, top_k: int, filter_json: str | None, **options) -> None:
    """Semantic search in a collection."""
    request = embedding_pb2.SearchRequest(
        collection=collection, text=query, top_k=top_k, filter=metadata_filter(filter_json)
    )
    async with channel_from(options) as channel:
        reply = await embedding_pb2_grpc.EmbeddingServiceStub(channel).Search(request)
    click.echo("\n".join(format_results(reply)))
