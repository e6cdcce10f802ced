"""The conductor's secret: one random key shared by every conductor process of a deployment.

From it derive the audit chain's HMAC key, the key of resume capabilities, the key encrypting run credentials and
pseudonym mappings at rest, and the per-run pseudonymisation keys.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from matcha.runtime import auth, secrets


class SealedStateUnreadable(Exception):
    """Run state sealed under another secret: replicas that do not share one cannot resume each other's runs."""


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    return secrets.load_or_create_secret(
        path, create=create, what="conductor secret", variable="MATCHA_CONDUCTOR_SECRET_FILE"
    )


def load_workload_issuer(path: Path, *, create: bool, ttl_seconds: float) -> auth.WorkloadTokenIssuer:
    """The key signing runs' workload tokens. Created (with its public file beside it) when the database is on
    this machine; otherwise the operator gives every conductor the same key and every service its public half."""
    paths = auth.KeyPaths.workload(path)
    if not path.exists():
        if not create:
            raise SystemExit(
                f"conductor workload key {path} is missing: with an external database every conductor must share "
                "one; set MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE to an Ed25519 private key (PEM)"
            )
        auth.ensure_key_pair(paths)
    try:
        return auth.WorkloadTokenIssuer.from_file(path, ttl_seconds=ttl_seconds)
    except ValueError as error:
        raise SystemExit(f"MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE: {error}") from None


class ConductorKeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.audit_key = self._derive("audit-chain")
        self.resume_key = self._derive("resume-capabilities")
        self._fernet = Fernet(base64.urlsafe_b64encode(self._derive("state-at-rest")))

    def _derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def trigger_start_key(self, trigger_id: str, sequence: int) -> str:
        """The start key of the run an alert starts. Derived from the secret, so no caller's idempotency key can
        take it first and pass another run off as the alert's."""
        message = f"{trigger_id}/{sequence}".encode()
        return "alert/" + hmac.new(self._derive("alert-trigger-runs"), message, hashlib.sha256).hexdigest()

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
