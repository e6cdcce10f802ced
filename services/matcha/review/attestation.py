"""Quality attestations: scores and flags a reviewer can trust were computed, not typed.

The generation service signs (Ed25519, as a compact JWS) a digest of the draft with the voice score
and the flags it computed; a plan hands the token to `ReviewService.Submit` beside the content, the
score and the flags. The review service verifies the signature with the public key alone, so neither
it nor a plan author can mint one, and refuses a submission whose content, score or flags differ from
what was signed (dropping a flag counts; flags added by others, e.g. the conductor's, are allowed).
"""

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from matcha.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument

ISSUER = "matcha-generation"
AUDIENCE = "matcha-review"
ALGORITHM = "EdDSA"
PRIVATE_KEY_NAME = "generation-attestation.key"
PUBLIC_KEY_NAME = "generation-attestation.pub"
# A draft waits for its Submit a few steps at most; a week bounds a replayed token.
TTL_SECONDS = 7 * 24 * 3600
# Scores travel as float32 in protobuf: compared at this precision.
SCORE_TOLERANCE = 0.01
FIELD = "quality_attestation"


@dataclass(frozen=True)
class AttestedFlag:
    code: str
    severity: str  # "INFO", "WARNING" or "ERROR"
    spans: tuple[tuple[int, int], ...]

    def key(self) -> list:
        return [self.code, self.severity, [list(span) for span in self.spans]]


@dataclass(frozen=True)
class Attestation:
    model: str
    voice_score: float | None
    flags: tuple[AttestedFlag, ...]


def ensure_attestation_keys(directory: Path) -> tuple[Path, Path]:
    """The generation service's key pair, created on first use (private 0600, public beside it)."""
    private, public = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    if private.exists() and public.exists():
        return private, public
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    contents = (
        (
            private,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            0o600,
        ),
        (
            public,
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            0o644,
        ),
    )
    # Write-then-rename so a concurrent reader never sees half a key.
    for path, content, mode in contents:
        partial = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        partial.replace(path)
    return private, public


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


class AttestationSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def from_file(cls, path: Path) -> "AttestationSigner":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(
        self, *, tenant: str, content: str, voice_score: float | None, flags: Iterable[AttestedFlag], model: str
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "tenant": tenant,
            "content_sha256": content_sha256(content),
            "voice_score": None if voice_score is None else round(float(voice_score), 3),
            "flags": [flag.key() for flag in flags],
            "model": model,
            "iat": now,
            "exp": now + TTL_SECONDS,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class AttestationVerifier:
    """Reads the public key when first needed: the generation service may create it after this one starts."""

    def __init__(self, public_key_file: Path) -> None:
        self._path = public_key_file
        self._key: Ed25519PublicKey | None = None

    def _public_key(self) -> Ed25519PublicKey:
        if self._key is None:
            if not self._path.exists():
                raise FailedPrecondition(
                    "this review service has no key to verify quality attestations with",
                    reason="ATTESTATION_KEY_MISSING",
                    metadata={"setting": "MATCHA_REVIEW_ATTESTATION_PUBLIC_KEY_FILE"},
                )
            key = serialization.load_pem_public_key(self._path.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise FailedPrecondition(
                    f"{self._path.name} is not an Ed25519 public key", reason="ATTESTATION_KEY_MISSING"
                )
            self._key = key
        return self._key

    def verify(
        self, token: str, *, tenant: str, content: str, voice_score: float | None, flags: list[dict[str, Any]]
    ) -> Attestation:
        """The attestation, if it signs this content, score and flags for this tenant; INVALID_ARGUMENT if not."""
        try:
            claims = jwt.decode(
                token,
                self._public_key(),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iss", "aud", "content_sha256", "tenant"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("expired", "ATTESTATION_EXPIRED") from None
        except jwt.InvalidTokenError as error:
            raise _refused(f"not a valid attestation ({error})", "ATTESTATION_INVALID") from None
        if claims["tenant"] != tenant:
            raise _refused("issued for another tenant", "ATTESTATION_MISMATCH")
        if claims["content_sha256"] != content_sha256(content):
            raise _refused("signs other content: the draft was changed after generation", "ATTESTATION_MISMATCH")
        attested_score = claims.get("voice_score")
        if (attested_score is None) != (voice_score is None) or (
            attested_score is not None and abs(attested_score - voice_score) > SCORE_TOLERANCE
        ):
            raise _refused(
                f"signs voice_score {attested_score}, the request gives {voice_score}", "ATTESTATION_MISMATCH"
            )
        given = {_flag_key(flag) for flag in flags}
        attested = tuple(
            AttestedFlag(code, severity, tuple((start, end) for start, end in spans))
            for code, severity, spans in claims.get("flags", [])
        )
        missing = [flag.code for flag in attested if _canonical(flag.key()) not in given]
        if missing:
            raise _refused(f"signs flags the request lacks: {', '.join(missing)}", "ATTESTATION_MISMATCH")
        return Attestation(str(claims.get("model", "")), attested_score, attested)


def _flag_key(flag: dict[str, Any]) -> str:
    """A flag in proto JSON (defaults omitted, severity as its enum name) in the signed form."""
    severity = str(flag.get("severity", "")).removeprefix("FLAG_SEVERITY_")
    spans = [[span.get("start", 0), span.get("end", 0)] for span in flag.get("spans", [])]
    return _canonical([flag.get("code", ""), severity, spans])


def _canonical(key: list) -> str:
    code, severity, spans = key
    return f"{code}|{severity}|" + ";".join(f"{start}-{end}" for start, end in spans)


def _refused(why: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        f"quality attestation {why}",
        violations=[FieldViolation(FIELD, why)],
        reason=reason,
    )
