"""What a store holds about one data subject: the one shape every `DescribeSubject` answers with.

A data-subject access request asks every store what it keeps about a person and for a copy of it. Each
capability service describes its own records as `SubjectHolding`s (one per kind of record, and per scope
where a kind is divided, such as the collection of a document); the conductor's `GetDataMap` gathers them.

Counts, classes and purposes cover every record about the subject. The export holds the records themselves,
content included, but never one above the class the call declared (those are counted as withheld), and
within limits that keep every reply, and the conductor's reply gathering them, under the message size.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from matcha.runtime.errors import Violations
from matcha.runtime.governance import CallContext, DataClass
from matcha.runtime.roles import AUDITOR

# Records exported per holding, and bytes of exported JSON per reply of one store (six stores answer a data
# map, within the 32 MiB messages the services accept).
MAX_EXPORTED_RECORDS = 1000
MAX_EXPORT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SubjectHolding:
    """One kind of record a store holds about a subject (matcha.common.v1.SubjectHolding)."""

    kind: str
    count: int
    highest_data_class: DataClass
    # Consented purposes where the store keeps them, otherwise the purpose the records were stored under.
    purposes: tuple[str, ...] = ()
    # The export, as JSON objects.
    records: tuple[dict[str, Any], ...] = ()
    scope: str = ""
    # Records above the class the call declared: counted, never exported.
    withheld: int = 0
    truncated: bool = False
    consented_channels: tuple[str, ...] = ()
    # None: kept until deleted or erased.
    retention: timedelta | None = None
    # Highest class among the exported records (at most the declared class), for the reply's derived class.
    exported_class: DataClass = DataClass.PUBLIC


def class_name_sql(column: str) -> str:
    """SQL naming the class stored as a number in `column` ('PERSONAL'), for exported records."""
    names = ", ".join(f"'{member.name}'" for member in DataClass)
    return f"(ARRAY[{names}])[{column}]"


def class_number_sql(expression: str) -> str:
    """SQL numbering the class named by `expression`; PERSONAL when it names none (the most restrictive)."""
    names = ", ".join(f"'{member.name}'" for member in DataClass)
    return f"coalesce(array_position(ARRAY[{names}], {expression}), {int(DataClass.PERSONAL)})"


def check_subject_id(subject_id: str) -> None:
    """A subject id as stores keep it: not empty, and text PostgreSQL can compare (no NUL character)."""
    violations = Violations()
    violations.check(bool(subject_id) and "\x00" not in subject_id, "subject_id", "must not be empty nor hold NUL")
    violations.raise_if_any("a subject id is required")


def require_describer(call: CallContext) -> None:
    """An access request's answer holds the subject's data: the auditor's (or an admin's) to read."""
    call.require_role(AUDITOR)


async def describe_kind(
    connection: asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool,
    kind: str,
    records_sql: str,
    *params: Any,
    ceiling: DataClass,
    limit: int = MAX_EXPORTED_RECORDS,
) -> list[SubjectHolding]:
    """One kind of record about a subject, one holding per scope, in one query.

    `records_sql` selects one row per record about the subject, with the columns `scope` (text, '' when the
    kind is not divided), `data_class` (integer), `purposes` (text[]), `record` (jsonb: what is exported) and
    `ordering` (the export's order); its parameters are `params` ($1, $2...).
    """
    ceiling_at, limit_at = f"${len(params) + 1}", f"${len(params) + 2}"
    rows = await connection.fetch(
        f"""WITH held AS MATERIALIZED ({records_sql})
            SELECT g.scope, count(*) AS count, max(g.data_class) AS highest,
                   max(g.data_class) FILTER (WHERE g.data_class <= {ceiling_at}) AS highest_exported,
                   count(*) FILTER (WHERE g.data_class > {ceiling_at}) AS withheld,
                   ARRAY(SELECT DISTINCT purpose FROM held AS h, unnest(h.purposes) AS purpose
                         WHERE h.scope = g.scope ORDER BY purpose) AS purposes,
                   ARRAY(SELECT h.record FROM held AS h WHERE h.scope = g.scope AND h.data_class <= {ceiling_at}
                         ORDER BY h.ordering LIMIT {limit_at}) AS records
            FROM held AS g GROUP BY g.scope ORDER BY g.scope""",
        *params,
        int(ceiling),
        limit + 1,
    )
    return [
        SubjectHolding(
            kind=kind,
            count=row["count"],
            highest_data_class=DataClass(row["highest"]),
            purposes=tuple(row["purposes"]),
            records=tuple(_decoded(record) for record in row["records"][:limit]),
            scope=row["scope"],
            withheld=row["withheld"],
            truncated=len(row["records"]) > limit,
            exported_class=DataClass(row["highest_exported"] or DataClass.PUBLIC),
        )
        for row in rows
    ]


def holdings_of(
    kind: str,
    records: Sequence[tuple[DataClass, Iterable[str], dict[str, Any]]],
    *,
    ceiling: DataClass,
    limit: int = MAX_EXPORTED_RECORDS,
) -> list[SubjectHolding]:
    """One kind of record a service found outside its database: (class, purposes, record) per record, in order."""
    if not records:
        return []
    exported = [(data_class, record) for data_class, _, record in records if data_class <= ceiling]
    return [
        SubjectHolding(
            kind=kind,
            count=len(records),
            highest_data_class=max(data_class for data_class, _, _ in records),
            purposes=tuple(sorted({purpose for _, purposes, _ in records for purpose in purposes})),
            records=tuple(record for _, record in exported[:limit]),
            withheld=len(records) - len(exported),
            truncated=len(exported) > limit,
            exported_class=max((data_class for data_class, _ in exported), default=DataClass.PUBLIC),
        )
    ]


def _decoded(record: Any) -> dict[str, Any]:
    # Elements of a jsonb array arrive as text when the connection has no codec for them.
    return json.loads(record) if isinstance(record, str) else record


def exported_classes(holdings: Sequence[SubjectHolding]) -> list[DataClass]:
    """A class per exported record (its holding's highest exported class), for the reply's derived class."""
    return [holding.exported_class for holding in holdings for _ in holding.records]


def cap_exports(holdings: Sequence[SubjectHolding], max_bytes: int = MAX_EXPORT_BYTES) -> list[SubjectHolding]:
    """The holdings of one reply within its byte budget: records past it are left out, their holding truncated."""
    remaining = max_bytes
    capped = []
    for holding in holdings:
        kept = []
        for record in holding.records:
            size = len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
            if size > remaining:
                break
            remaining -= size
            kept.append(record)
        if len(kept) < len(holding.records):
            # Once one record does not fit, later holdings export nothing: the reply stays in a stable order.
            remaining = 0
            holding = replace(holding, records=tuple(kept), truncated=True)
        capped.append(holding)
    return capped
