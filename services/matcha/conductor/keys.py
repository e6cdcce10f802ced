"""The conductor's secret: one random key shared by every conductor process of a deployment.

From it derive the audit chain's HMAC key, the key of resume capabilities, the key encrypting run credentials and
pseudonym mappings at rest, and the per-run pseudonymisation keys.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

SECRET_BYTES = 32


class SealedStateUnreadable(Exception):
    """Run state sealed under another secret: replicas that do not share one cannot resume each other's runs."""


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    """Reads the secret, creating it on first use when `create` (a local deployment); concurrent first starts
    agree on one. Where replicas share an external database, a secret each one made up would fork the audit
    chain and leave every replica unable to read the others' runs, so a missing one stops the process."""
    if not path.exists() and not create:
        raise SystemExit(
            f"conductor secret {path} is missing: with an external database every conductor replica must share "
            "one secret; set MATCHA_CONDUCTOR_SECRET_FILE to a file holding 64 hex characters"
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
        raise SystemExit(f"conductor secret {path} must hold {2 * SECRET_BYTES} hex characters")
    return bytes.fromhex(text)


class ConductorKeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.audit_key = self._derive("audit-chain")
        self.resume_key = self._derive("resume-capabilities")
        self._fernet = Fernet(base64.urlsafe_b64encode(self._derive("state-at-rest")))

    def _derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def pseudonym_key(self, key_root: str) -> bytes:
        return self._derive(f"pseudonyms/{key_root}")

    def seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value).encode())

    def open(self, token: bytes) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise SealedStateUnreadable(
                "run state was sealed with another conductor secret (MATCHA_CONDUCTOR_SECRET_FILE differs "
                "between replicas)"
            ) from None
