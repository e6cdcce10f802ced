"""Bearer tokens: Ed25519-signed JWTs naming subject, tenant and roles.

Services only hold the public key, so a compromised service cannot mint tokens;
the private key stays with the launcher's state directory (or the operator's
identity provider in production).
"""

import collections
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from matcha.runtime.errors import Unauthenticated
from matcha.runtime.governance import Principal

ISSUER = "matcha"
AUDIENCE = "matcha"
ALGORITHM = "EdDSA"
PRIVATE_KEY_NAME = "token-signing.key"
PUBLIC_KEY_NAME = "token-signing.pub"


@dataclass(frozen=True)
class KeyPaths:
    private: Path
    public: Path

    @classmethod
    def in_dir(cls, directory: Path) -> "KeyPaths":
        return cls(directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME)


def ensure_signing_keys(directory: Path) -> KeyPaths:
    """Creates the key pair on first use; later calls reuse it."""
    paths = KeyPaths.in_dir(directory)
    if paths.private.exists() and paths.public.exists():
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Write-then-rename so a concurrent reader never sees half a key.
    for path, content, mode in ((paths.private, private_pem, 0o600), (paths.public, public_pem, 0o644)):
        partial = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        partial.replace(path)
    return paths


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def from_file(cls, path: Path) -> "TokenIssuer":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def mint(self, *, subject: str, tenant: str, roles: list[str], ttl_seconds: int = 24 * 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "roles": sorted(set(roles)),
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class TokenVerifier:
    # A client sends the same token on every call: a signature verified once holds until the token
    # expires (there is no revocation list), which spares an Ed25519 check per request.
    CACHE_SIZE = 1024

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self._key = public_key
        self._verified: collections.OrderedDict[str, tuple[Principal, float]] = collections.OrderedDict()

    @classmethod
    def from_file(cls, path: Path) -> "TokenVerifier":
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        return cls(key)

    def verify(self, authorization: str | None) -> Principal:
        """Turns an `authorization` header value into a principal, or refuses it."""
        if not authorization:
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="TOKEN_MALFORMED")
        token = token.strip()
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            self._verified.move_to_end(token)
            return cached[0]
        principal, expires = self._decode(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}", reason="TOKEN_INVALID") from None
        tenant, roles = claims.get("tenant"), claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated("token names no tenant", reason="TOKEN_INVALID")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise Unauthenticated("token roles must be a list of strings", reason="TOKEN_INVALID")
        return Principal(subject=claims["sub"], tenant=tenant, roles=frozenset(roles)), float(claims["exp"])
