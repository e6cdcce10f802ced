"""Bearer tokens: Ed25519-signed JWTs naming subject, tenant and roles.

Services only hold public keys, so a compromised service cannot mint tokens;
the private key stays with the launcher's state directory (or the operator's
identity provider in production).

Keys rotate without downtime: every token names its signing key (`kid`, a digest of the public key),
the public key file may hold several keys (the current one and those whose tokens may still be alive),
and a verifier that meets an unknown key id reads its file again. Tokens have a maximum lifetime.

Workload tokens are the conductor's: minted per hop of a run, valid for minutes, signed by the conductor's
workload key (never a user key), naming the run's starter as subject and the run they act through (`act`),
bound to the run's purpose. A verifier tells the two kinds apart by the key that signed them: a token signed
by a user key that claims to act through a run is refused, as is a workload token without a run.
"""

import base64
import collections
import hashlib
import os
import re
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
WORKLOAD_ISSUER = "matcha-conductor"
WORKLOAD_PRIVATE_KEY_NAME = "conductor-workload.key"
WORKLOAD_PUBLIC_KEY_NAME = "conductor-workload.pub"
# The claim of a workload token naming who acts for the subject, and through which run.
ACTOR_CLAIM = "act"
# The longest a token may live (its `exp` minus its `iat`): a stolen token is bounded in time too.
MAX_TOKEN_LIFETIME_SECONDS = 31 * 24 * 3600
# Workload tokens are minted per hop: minutes, not days.
MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS = 15 * 60
# A verifier reads its key file again at most this often when it meets an unknown key id.
KEY_RELOAD_SECONDS = 5.0
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


@dataclass(frozen=True)
class KeyPaths:
    private: Path
    public: Path

    @classmethod
    def in_dir(cls, directory: Path) -> "KeyPaths":
        return cls(directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME)

    @classmethod
    def workload(cls, private: Path) -> "KeyPaths":
        """The conductor's workload key and, beside it, the public keys every service verifies with."""
        return cls(private, private.with_suffix(".pub"))


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode()


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key of a PEM file, by key id."""
    keys = {}
    for block in _PEM_BLOCK.findall(path.read_bytes()):
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} holds a key that is not an Ed25519 public key")
        keys[key_id(key)] = key
    if not keys:
        raise ValueError(f"{path} holds no public key")
    return keys


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    # Write-then-rename so a concurrent reader never sees half a key.
    partial = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    partial.replace(path)


def _write_key_pair(paths: KeyPaths, key: Ed25519PrivateKey, public_keys: list[Ed25519PublicKey]) -> None:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The public file first, so that no token is signed before the services can verify it.
    _write_atomically(paths.public, b"".join(_public_pem(public) for public in public_keys), 0o644)
    _write_atomically(paths.private, private_pem, 0o600)


def ensure_signing_keys(directory: Path) -> KeyPaths:
    """Creates the key pair on first use; later calls reuse it."""
    return ensure_key_pair(KeyPaths.in_dir(directory))


def ensure_workload_keys(directory: Path) -> KeyPaths:
    """The conductor's workload key pair in `directory`, created on first use."""
    return ensure_key_pair(KeyPaths.workload(directory / WORKLOAD_PRIVATE_KEY_NAME))


def ensure_key_pair(paths: KeyPaths) -> KeyPaths:
    if paths.private.exists() and paths.public.exists():
        return paths
    paths.private.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    _write_key_pair(paths, key, [key.public_key()])
    return paths


def rotate_signing_keys(directory: Path, *, keep_previous: int = 1) -> str:
    """A new signing key; the public file keeps the newest `keep_previous` retired keys, so tokens they
    signed stay valid until they expire. Rotate no more often than the maximum token lifetime. Returns the
    new key id."""
    return rotate_key_pair(ensure_signing_keys(directory), keep_previous=keep_previous)


def rotate_key_pair(paths: KeyPaths, *, keep_previous: int = 1) -> str:
    """`rotate_signing_keys` for any key pair (the conductor's workload key included)."""
    ensure_key_pair(paths)
    current = load_public_keys(paths.public)
    key = Ed25519PrivateKey.generate()
    retired = list(current.values())[:keep_previous]  # newest first, as written
    _write_key_pair(paths, key, [key.public_key(), *retired])
    return key_id(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> "TokenIssuer":
        return cls(load_private_key(path))

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
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})


class WorkloadTokenIssuer:
    """The conductor's: one token per hop of a run, acting for the run's starter with the roles the run was
    allowed at start, for the run's purpose only, valid for `ttl_seconds`."""

    def __init__(self, private_key: Ed25519PrivateKey, *, ttl_seconds: float) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())
        self._ttl = ttl_seconds

    @classmethod
    def from_file(cls, path: Path, *, ttl_seconds: float) -> "WorkloadTokenIssuer":
        return cls(load_private_key(path), ttl_seconds=ttl_seconds)

    def mint(self, *, subject: str, tenant: str, roles: list[str], run_id: str, purpose: str) -> str:
        now = int(time.time())
        claims = {
            "iss": WORKLOAD_ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "roles": sorted(set(roles)),
            "purpose": purpose,
            ACTOR_CLAIM: {"sub": WORKLOAD_ISSUER, "run": run_id},
            "iat": now,
            "exp": now + int(self._ttl),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})


def _load_optional_public_keys(path: Path | None) -> dict[str, Ed25519PublicKey]:
    """A workload key file not written yet (the conductor creates it on a local deployment) holds no key."""
    return load_public_keys(path) if path is not None and path.exists() else {}


class TokenVerifier:
    """Verifies user tokens (signed by the user keys) and the conductor's workload tokens (signed by its
    workload keys); each file is read again when a token names a key not seen yet."""

    # A client sends the same token on every call: a signature verified once holds until the token
    # expires, which spares an Ed25519 check per request. (Revoking a principal stops their runs at the
    # conductor, before it mints the next hop's token.)
    CACHE_SIZE = 1024

    def __init__(
        self,
        keys: dict[str, Ed25519PublicKey],
        *,
        source: Path | None = None,
        max_lifetime_seconds: float = MAX_TOKEN_LIFETIME_SECONDS,
        workload_keys: dict[str, Ed25519PublicKey] | None = None,
        workload_source: Path | None = None,
        max_workload_lifetime_seconds: float = MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self._keys = keys
        self._source = source
        self._workload_keys = dict(workload_keys or {})
        self._workload_source = workload_source
        self._check_disjoint()
        self._loaded_at = time.monotonic()
        self._max_lifetime = max_lifetime_seconds
        self._max_workload_lifetime = max_workload_lifetime_seconds
        self._verified: collections.OrderedDict[str, tuple[Principal, float]] = collections.OrderedDict()

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        max_lifetime_seconds: float = MAX_TOKEN_LIFETIME_SECONDS,
        workload_path: Path | None = None,
        max_workload_lifetime_seconds: float = MAX_WORKLOAD_TOKEN_LIFETIME_SECONDS,
    ) -> "TokenVerifier":
        """`workload_path` may not exist yet: its keys are read once a workload token names one."""
        return cls(
            load_public_keys(path),
            source=path,
            max_lifetime_seconds=max_lifetime_seconds,
            workload_keys=_load_optional_public_keys(workload_path),
            workload_source=workload_path,
            max_workload_lifetime_seconds=max_workload_lifetime_seconds,
        )

    def _check_disjoint(self) -> None:
        shared = self._keys.keys() & self._workload_keys.keys()
        if shared:
            raise ValueError(f"key {sorted(shared)[0]} is both a user key and a workload key: they must differ")

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

    def _key_for(self, token: str) -> tuple[Ed25519PublicKey, bool]:
        """The key that must have signed the token, and whether it is a workload key."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}", reason="TOKEN_INVALID") from None
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values())), False  # a single user key needs no name
        stale = time.monotonic() - self._loaded_at >= KEY_RELOAD_SECONDS
        if kid not in self._keys and kid not in self._workload_keys and stale:
            self._loaded_at = time.monotonic()  # a rotation may have published it since
            if self._source is not None:
                self._keys = load_public_keys(self._source)
            if self._workload_source is not None:
                self._workload_keys = _load_optional_public_keys(self._workload_source)
            self._check_disjoint()
        if kid in self._workload_keys:
            return self._workload_keys[kid], True
        if kid not in self._keys:
            raise Unauthenticated("token signed by an unknown key", reason="TOKEN_INVALID", metadata={"kid": str(kid)})
        return self._keys[kid], False

    def _decode(self, token: str) -> tuple[Principal, float]:
        key, workload = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=WORKLOAD_ISSUER if workload else ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}", reason="TOKEN_INVALID") from None
        lifetime = claims["exp"] - claims["iat"]
        max_lifetime = self._max_workload_lifetime if workload else self._max_lifetime
        if lifetime > max_lifetime:
            raise Unauthenticated(
                f"token lifetime {lifetime:.0f} s is above the maximum of {max_lifetime:.0f} s",
                reason="TOKEN_LIFETIME_EXCEEDED",
            )
        tenant, roles = claims.get("tenant"), claims.get("roles", [])
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated("token names no tenant", reason="TOKEN_INVALID")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise Unauthenticated("token roles must be a list of strings", reason="TOKEN_INVALID")
        run_id, purpose = self._acting_through(claims, workload)
        principal = Principal(
            subject=claims["sub"], tenant=tenant, roles=frozenset(roles), run_id=run_id, bound_purpose=purpose
        )
        return principal, float(claims["exp"])

    @staticmethod
    def _acting_through(claims: dict, workload: bool) -> tuple[str, str]:
        """(run id, purpose) of a workload token; a user token may not claim to act through a run."""
        actor = claims.get(ACTOR_CLAIM)
        if not workload:
            if actor is not None:
                raise Unauthenticated(
                    "only the conductor's workload key signs tokens that act through a run", reason="TOKEN_INVALID"
                )
            return "", ""
        run_id = actor.get("run") if isinstance(actor, dict) else None
        purpose = claims.get("purpose")
        if not isinstance(run_id, str) or not run_id or not isinstance(purpose, str) or not purpose:
            raise Unauthenticated("a workload token must name its run and purpose", reason="TOKEN_INVALID")
        return run_id, purpose
