"""`matcha token create`: a bearer token for local use, signed with the launcher's key; `matcha keys rotate`."""

from pathlib import Path

import click

from matcha.cli.connection import DEFAULT_STATE_DIR
from matcha.runtime.auth import MAX_TOKEN_LIFETIME_SECONDS, TokenIssuer, ensure_signing_keys, rotate_signing_keys


@click.group()
def token() -> None:
    """Bearer tokens for local use."""


@token.command("create")
@click.option("--tenant", required=True)
@click.option("--role", "roles", multiple=True, help="role granted (repeatable), e.g. analyst, reviewer, admin")
@click.option("--subject", default="local-user", show_default=True)
@click.option("--ttl-hours", default=24, show_default=True)
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
def create(tenant: str, roles: tuple[str, ...], subject: str, ttl_hours: int, state_dir: Path) -> None:
    """Print a signed JWT for SUBJECT in TENANT."""
    keys = ensure_signing_keys(state_dir / "keys")
    click.echo(
        TokenIssuer.from_file(keys.private).mint(
            subject=subject, tenant=tenant, roles=list(roles), ttl_seconds=ttl_hours * 3600
        )
    )


@click.group()
def keys() -> None:
    """The token-signing keys."""


@keys.command("rotate")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
def rotate(state_dir: Path) -> None:
    """Sign new tokens with a new key. The previous public key stays beside it, so the tokens it signed keep
    working until they expire; running services read the new public key when they first meet it."""
    new_key = rotate_signing_keys(state_dir / "keys")
    days = MAX_TOKEN_LIFETIME_SECONDS // 86400
    click.echo(f"signing with key {new_key}; the previous key verifies its tokens until they expire")
    click.echo(f"rotate again after {days} days at the earliest (the maximum token lifetime)")
