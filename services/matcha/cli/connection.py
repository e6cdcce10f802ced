"""How CLI commands reach services: target, token, governance headers, error reporting."""

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
import grpc

from matcha.runtime.auth import KeyPaths, TokenIssuer
from matcha.runtime.client import error_details, open_channel
from matcha.runtime.governance import DataClass

DEFAULT_STATE_DIR = Path(os.environ.get("MATCHA_STATE_DIR", ".state"))
DATA_CLASSES = click.Choice([member.name for member in DataClass], case_sensitive=False)


def local_token(state_dir: Path, *, tenant: str, roles: list[str], subject: str = "cli") -> str:
    """Mints a token from the launcher's key, for local use."""
    keys = KeyPaths.in_dir(state_dir / "keys")
    if not keys.private.exists():
        raise click.ClickException(f"no signing key in {keys.private.parent}: run `matcha up` first, or pass --token")
    return TokenIssuer.from_file(keys.private).mint(subject=subject, tenant=tenant, roles=roles)


def connection_options(default_target: str, *, purpose: str = "campaign", data_class: str = "INTERNAL") -> Callable:
    """Options shared by every command that calls a service (a command may declare other defaults)."""

    def decorate(command: Callable) -> Callable:
        options = [
            click.option("--target", default=default_target, show_default=True, help="host:port of the service"),
            click.option("--token", envvar="MATCHA_TOKEN", help="bearer token (default: minted from the local key)"),
            click.option("--tenant", default="demo", show_default=True, help="tenant of the minted local token"),
            click.option("--purpose", default=purpose, show_default=True, help="declared purpose"),
            click.option(
                "--data-class",
                "data_class",
                type=DATA_CLASSES,
                default=data_class,
                show_default=True,
                help="declared class of the payload",
            ),
            click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def channel_from(options: dict) -> grpc.aio.Channel:
    token = options["token"] or local_token(options["state_dir"], tenant=options["tenant"], roles=["analyst", "admin"])
    return open_channel(
        options["target"],
        token=token,
        purpose=options["purpose"],
        data_class=DataClass[options["data_class"].upper()],
    )


def run_async(command: Callable) -> Callable:
    """Runs an async command; a refused call becomes a clear message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return asyncio.run(command(*args, **kwargs))
        except grpc.RpcError as error:
            details = error_details(error)
            click.echo(f"error: {details.code.name}: {details.message}", err=True)
            for field_path, description in details.field_violations.items():
                click.echo(f"  {field_path}: {description}", err=True)
            if details.reason:
                click.echo(f"  reason: {details.reason}", err=True)
            sys.exit(1)

    return wrapper
