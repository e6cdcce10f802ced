"""`matcha up` and `matcha demo`: the local stack on the embedded defaults."""

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import click
import grpc

from matcha.cli.connection import DEFAULT_STATE_DIR, run_async
from matcha.cli.demo import DEMO_REVIEWER, run_campaign_demo, run_classification_demo, run_search_demo
from matcha.cli.segment import run_segmentation_demo
from matcha.launcher.plans import install_local_plans
from matcha.launcher.supervisor import LOCAL_TENANT, Stack, StackError
from matcha.runtime.auth import TokenIssuer
from matcha.runtime.client import error_details

# The marketer's page: campaigns, their variants and results, segments.
CAMPAIGN_PAGE = "campaigns.html"


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


def install_shipped_plans(stack: Stack) -> None:
    conductor = next(service for service in stack.running if service.spec.name == "conductor")
    issuer = TokenIssuer.from_file(stack.keys.private)
    try:
        installed = install_local_plans(conductor.address, issuer, LOCAL_TENANT)
    except grpc.RpcError as error:
        raise click.ClickException(
            f"the shipped plans could not be registered: {error_details(error).message}"
        ) from None
    names = ", ".join(f"{plan.name} v{plan.version}" for plan in installed)
    click.echo(f"  {'plans':<14} {names} (tenant {LOCAL_TENANT})")


def describe(stack: Stack) -> None:
    for service in stack.running:
        click.echo(f"  {service.spec.name:<14} {service.address:<18} log {service.log_path}")
    database = f"embedded, data in {stack.postgres_dir}" if stack.embedded_database else "external"
    click.echo(f"  {'database':<14} {database}")


def page_link(stack: Stack, page: str, subject: str, role: str) -> str:
    """A local user's link to one of the gateway's pages. The token rides in the URL fragment, which browsers
    never send to a server; anyone holding the link acts with `role` for the local tenant until it expires."""
    gateway = next(service for service in stack.running if service.spec.name == "gateway")
    token = TokenIssuer.from_file(stack.keys.private).mint(
        subject=subject, tenant=LOCAL_TENANT, roles=[role], ttl_seconds=12 * 3600
    )
    return f"http://{gateway.address}/ui/{page}#token={token}"


def review_page_link(stack: Stack) -> str:
    return page_link(stack, "", "reviewer", "reviewer")


@click.command()
@stack_options
def up(state_dir: Path, database_url: str | None, port_offset: int) -> None:
    """Start every implemented service; Ctrl-C stops them all."""
    with running_stack(state_dir, database_url, port_offset) as stack:
        describe(stack)
        install_shipped_plans(stack)
        click.echo(f"review page (reviewer of tenant {LOCAL_TENANT}, valid 12 h): {review_page_link(stack)}")
        click.echo("matcha is up; mint a token with `matcha token create --tenant demo --role analyst`; Ctrl-C stops")
        try:
            while not (crashed := stack.exited()):
                time.sleep(0.5)
            names = ", ".join(service.spec.name for service in crashed)
            raise click.ClickException(f"{names} stopped unexpectedly; see {crashed[0].log_path}")
        except KeyboardInterrupt:
            pass


@click.command()
@stack_options
def demo(state_dir: Path, database_url: str | None, port_offset: int) -> None:
    """Start the stack, then: search real reviews, segment real customers, read the sentiment of reviews and
    the weak signals in news headlines, and run the campaign loop (variants per segment in the brand's voice,
    review by a demo reviewer, publication, simulated outcomes, results, customers moving); stop."""
    with running_stack(state_dir, database_url, port_offset) as stack:
        describe(stack)
        issuer = TokenIssuer.from_file(stack.keys.private)
        token = issuer.mint(subject="demo", tenant=LOCAL_TENANT, roles=["analyst", "author", "operator", "publisher"])
        reviewer = issuer.mint(subject=DEMO_REVIEWER, tenant=LOCAL_TENANT, roles=["reviewer"])
        install_shipped_plans(stack)
        addresses = {service.spec.name: service.address for service in stack.running}
        run_async(run_search_demo)(addresses["embedding"], token)
        run_async(run_segmentation_demo)(addresses["segmentation"], token)
        run_async(run_classification_demo)(addresses["classification"], token)
        run_async(run_campaign_demo)(addresses, token, reviewer, page_link(stack, CAMPAIGN_PAGE, "marketer", "analyst"))
