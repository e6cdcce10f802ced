"""Random secrets kept in files: created on first use by a local deployment, required from the operator otherwise."""

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32


def load_or_create_secret(path: Path, *, create: bool, what: str, variable: str) -> bytes:
    """Reads the secret, creating it on first use when `create` (a local deployment); concurrent first starts
    agree on one. Where processes share an external database, a secret each one made up would fork what it
    protects, so a missing one stops the process naming the `variable` that sets it."""
    if not path.exists() and not create:
        raise SystemExit(
            f"{what} {path} is missing: with an external database every process must share one; "
            f"set {variable} to a file holding {2 * SECRET_BYTES} hex characters"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(SECRET_BYTES))
    text = path.read_text().strip()
    if len(text) != 2 * SECRET_BYTES:
        raise SystemExit(f"{what} {path} must hold {2 * SECRET_BYTES} hex characters")
    return bytes.fromhex(text)
