"""Domain errors: what went wrong, in terms a client can act on.

Cores raise these; one server interceptor turns them into a gRPC status with
`google.rpc` details. Nothing here knows about transports beyond the status code.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

ERROR_DOMAIN = "matcha.io"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field, addressed by its path in the request (e.g. `documents[2].text`)."""

    field: str
    description: str


class MatchaError(Exception):
    """Base of every error a client may see; carries the status code and details."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        violations: tuple[FieldViolation, ...] | list[FieldViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(MatchaError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MatchaError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MatchaError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MatchaError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(MatchaError):
    """A concurrent change won (e.g. a stale version): re-read and retry."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(MatchaError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(MatchaError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(MatchaError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MatchaError):
    code = grpc.StatusCode.UNAVAILABLE


@dataclass
class Violations:
    """Collects every field violation of a request before refusing it once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.add(field_path, description)
        return ok

    def check_text(self, path: str, text: str, max_chars: int) -> None:
        """A text a model will read: not blank, not over the service's limit."""
        if not text.strip():
            self.add(path, "must not be empty")
        elif len(text) > max_chars:
            self.add(path, f"at most {max_chars} characters (got {len(text)})")

    def check_texts(self, path: str, texts: list[str], *, max_items: int, max_chars: int) -> None:
        if self.check(0 < len(texts) <= max_items, path, f"between 1 and {max_items} texts per call"):
            for index, text in enumerate(texts):
                self.check_text(f"{path}[{index}]", text, max_chars)

    def raise_if_any(self, message: str = "request has invalid fields") -> None:
        if self.items:
            raise InvalidArgument(message, violations=self.items)
