"""Governance context: who calls, for which tenant and purpose, with which data.

The context travels as gRPC metadata (see matcha/common/v1/common.proto); the
server interceptor establishes it once per call and cores receive it explicitly.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from matcha.runtime import roles
from matcha.runtime.errors import InvalidArgument, PermissionDenied

AUTHORIZATION_HEADER = "authorization"
PURPOSE_HEADER = "x-matcha-purpose"
DATA_CLASS_HEADER = "x-matcha-data-class"
TENANT_HEADER = "x-matcha-tenant"
REQUEST_ID_HEADER = "x-request-id"
IDEMPOTENCY_KEY_HEADER = "x-matcha-idempotency-key"
# Trailing metadata of a reply that returns records: the highest class among them.
DERIVED_CLASS_HEADER = "x-matcha-derived-class"

DEFAULT_PURPOSE = "unspecified"


class DataClass(IntEnum):
    """Sensitivity levels, numbered as `matcha.common.v1.DataClass`."""

    PUBLIC = 1
    INTERNAL = 2
    CONFIDENTIAL = 3
    PERSONAL = 4

    @classmethod
    def parse(cls, value: str) -> "DataClass":
        """Accepts `PERSONAL`, `personal` or `DATA_CLASS_PERSONAL`."""
        name = value.strip().upper().removeprefix("DATA_CLASS_")
        try:
            return cls[name]
        except KeyError:
            allowed = ", ".join(member.name for member in cls)
            raise InvalidArgument(
                f"unknown data class {value!r}; expected one of {allowed}",
                reason="UNKNOWN_DATA_CLASS",
            ) from None

    @classmethod
    def from_wire(cls, number: int) -> "DataClass":
        """Unset (0) means the most restrictive class, as the contract says."""
        return cls(number) if number else cls.PERSONAL


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]
    # Set for the conductor's workload tokens: the run the subject acts through, and the only purpose it may
    # declare.
    run_id: str = ""
    bound_purpose: str = ""

    def has_role(self, role: str) -> bool:
        held = roles.effective_roles(self.roles)
        return role in held or roles.ADMIN in held


def outgoing_metadata(
    token: str,
    *,
    purpose: str,
    data_class: DataClass,
    tenant: str = "",
    request_id: str = "",
    idempotency_key: str = "",
) -> list[tuple[str, str]]:
    """The governance metadata of a call one service makes to another: the only place it is spelled out."""
    metadata = [
        (AUTHORIZATION_HEADER, f"Bearer {token}"),
        (PURPOSE_HEADER, purpose),
        (DATA_CLASS_HEADER, data_class.name),
    ]
    optional = ((TENANT_HEADER, tenant), (REQUEST_ID_HEADER, request_id), (IDEMPOTENCY_KEY_HEADER, idempotency_key))
    return metadata + [(key, value) for key, value in optional if value]


@dataclass(frozen=True)
class CallContext:
    """Everything a core needs to know about who asks and why."""

    principal: Principal
    purpose: str
    data_class: DataClass
    request_id: str = ""
    idempotency_key: str = ""
    # The caller's verified token, for calls a service makes on its behalf; never shown.
    bearer_token: str = field(default="", repr=False)

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    def outgoing_metadata(self) -> list[tuple[str, str]]:
        """To call another service on the caller's behalf: their token, purpose, class and tenant."""
        return outgoing_metadata(
            self.bearer_token, purpose=self.purpose, data_class=self.data_class, tenant=self.tenant
        )

    def require_role(self, role: str) -> None:
        if not self.principal.has_role(role):
            raise PermissionDenied(
                f"role {role!r} is required",
                reason="MISSING_ROLE",
                metadata={"role": role, "subject": self.principal.subject},
            )


@dataclass(frozen=True)
class RecordPolicy:
    """What a stored record is, where it came from and what it may be used for."""

    data_class: DataClass
    consented_purposes: frozenset[str] = frozenset()
    source: str = ""
    subject_id: str = ""

    @classmethod
    def submitted(
        cls,
        call: "CallContext",
        data_class: DataClass | None,
        consented_purposes: frozenset[str],
        source: str = "",
        subject_id: str = "",
    ) -> "RecordPolicy":
        """A record's policy as a caller submitted it: an unset class is the call's, and a record collected
        without stated purposes may serve the purpose it is stored for."""
        return cls(data_class or call.data_class, consented_purposes or frozenset({call.purpose}), source, subject_id)

    @classmethod
    def from_row(cls, row) -> "RecordPolicy":
        """From a stored row with the columns every store uses for it."""
        return cls(
            data_class=DataClass(row["data_class"]),
            consented_purposes=frozenset(row["consented_purposes"]),
            source=row["source"],
            subject_id=row["subject_id"],
        )

    def permits(self, purpose: str) -> bool:
        return self.data_class == DataClass.PUBLIC or purpose in self.consented_purposes

    def require_consent(self, purpose: str) -> None:
        require_consent(self.data_class, self.consented_purposes, purpose)

    @staticmethod
    def visibility_sql(purpose_placeholder: str, table: str = "") -> str:
        """The SQL form of `permits`, for stores with the standard policy columns (`table.` prefixes them)."""
        prefix = f"{table}." if table else ""
        return (
            f"({prefix}data_class = {int(DataClass.PUBLIC)} "
            f"OR {purpose_placeholder}::text = ANY({prefix}consented_purposes))"
        )


@dataclass(frozen=True)
class Clearance:
    """The highest data class a service may receive, and where it runs."""

    max_data_class: DataClass
    inside_trust_boundary: bool

    @classmethod
    def configured(cls, clearance: str, trust_boundary: str) -> "Clearance":
        """From settings; data above INTERNAL never leaves the trust boundary, whatever they say."""
        max_data_class, inside = DataClass[clearance], trust_boundary == "inside"
        if not inside and max_data_class > DataClass.INTERNAL:
            raise ValueError("outside the trust boundary, the clearance is INTERNAL at most")
        return cls(max_data_class, inside)

    def admit(self, data_class: DataClass) -> None:
        if data_class > self.max_data_class:
            raise PermissionDenied(
                f"payload class {data_class.name} exceeds this service's clearance {self.max_data_class.name}",
                reason="CLEARANCE_EXCEEDED",
                metadata={"data_class": data_class.name, "clearance": self.max_data_class.name},
            )


def require_consent(data_class: DataClass, consented_purposes: frozenset[str], purpose: str) -> None:
    """Non-public data may only be processed for a purpose its subject consented to."""
    if data_class > DataClass.PUBLIC and purpose not in consented_purposes:
        raise PermissionDenied(
            f"purpose {purpose!r} is not among the record's consented purposes",
            reason="PURPOSE_NOT_CONSENTED",
            metadata={"purpose": purpose, "consented": ",".join(sorted(consented_purposes))},
        )


RESUME_CAPABILITY_PREFIX = "rc1"


@dataclass(frozen=True)
class ResumeCapability:
    """The right to resume one run at one signal key, issued by the conductor to the step that hands work out.

    Its body is readable by any service (to check it names the run it comes with); only the conductor,
    which holds the key, can issue or verify one.
    """

    tenant: str
    run_id: str
    step_id: str
    key: str

    def issue(self, mac_key: bytes) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps([self.tenant, self.run_id, self.step_id, self.key], separators=(",", ":")).encode()
        ).decode()
        return f"{RESUME_CAPABILITY_PREFIX}.{body}.{_capability_mac(mac_key, body)}"

    @classmethod
    def read(cls, token: str) -> "ResumeCapability | None":
        """The capability a token names, unverified; None when it is not one."""
        prefix, _, rest = token.partition(".")
        body, _, mac = rest.partition(".")
        if prefix != RESUME_CAPABILITY_PREFIX or not body or not mac:
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if not (isinstance(fields, list) and len(fields) == 4 and all(isinstance(item, str) for item in fields)):
            return None
        return cls(*fields)

    @classmethod
    def verify(cls, token: str, mac_key: bytes) -> "ResumeCapability | None":
        capability = cls.read(token)
        if capability is None:
            return None
        body, mac = token.split(".")[1:3]
        return capability if hmac.compare_digest(_capability_mac(mac_key, body), mac) else None


def _capability_mac(mac_key: bytes, body: str) -> str:
    return hmac.new(mac_key, body.encode(), hashlib.sha256).hexdigest()


def roles_satisfy(held: Iterable[str], required: Iterable[str]) -> bool:
    """True when no role is required, or one of `required` (or admin) is among the roles `held`."""
    required = frozenset(required)
    return not required or bool(roles.effective_roles(held) & (required | {roles.ADMIN}))
