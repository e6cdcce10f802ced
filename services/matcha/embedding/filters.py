"""Metadata filters: a MongoDB-style JSON document compiled to parameterised SQL.

    {"lang": "en", "year": {"$gte": 2000}, "$or": [{"tag": {"$in": ["a", "b"]}}, {"draft": {"$exists": false}}]}

Field names and values travel as bind parameters (`metadata #> $n`), never as SQL text;
the pool's jsonb codec encodes values.
"""

import re
from typing import Any

from matcha.runtime.errors import FieldViolation, InvalidArgument

MAX_DEPTH = 6
# Each condition costs SQL text and bind parameters (PostgreSQL takes at most 65,535 per statement); long lists
# of values belong in one `$in`.
MAX_CONDITIONS = 256
_FIELD_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", *_COMPARISONS, "$in", "$nin", "$exists")


class SqlParams:
    """Accumulates bind parameters; `add` returns the placeholder to write in SQL."""

    def __init__(self, first: list[Any] | None = None) -> None:
        self.values: list[Any] = list(first or [])

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def compile_filter(document: dict[str, Any], params: SqlParams, column: str = "metadata") -> str:
    """Returns a SQL boolean expression (TRUE for an empty filter)."""
    return _Compiler(params, column).conjunction(document, "filter", depth=0)


def _invalid(path: str, description: str) -> InvalidArgument:
    return InvalidArgument("malformed metadata filter", violations=[FieldViolation(path, description)])


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class _Compiler:
    def __init__(self, params: SqlParams, column: str) -> None:
        self._params = params
        self._column = column
        self._conditions = 0

    def conjunction(self, document: Any, path: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise _invalid(path, f"filters nest at most {MAX_DEPTH} levels deep")
        if not isinstance(document, dict):
            raise _invalid(path, "must be an object")
        clauses = [self.clause(key, value, f"{path}.{key}", depth) for key, value in document.items()]
        return "(" + " AND ".join(clauses) + ")" if clauses else "TRUE"

    def clause(self, key: str, value: Any, path: str, depth: int) -> str:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _invalid(path, f"{key} takes a non-empty list of filters")
            joiner = " AND " if key == "$and" else " OR "
            return (
                "("
                + joiner.join(self.conjunction(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
                + ")"
            )
        if key.startswith("$"):
            raise _invalid(path, f"unknown operator {key}; top-level operators are $and and $or")
        segments = key.split(".")
        if not all(_FIELD_SEGMENT.match(segment) for segment in segments):
            raise _invalid(path, "field names use letters, digits, '_' and '-', separated by '.'")
        field_sql = f"({self._column} #> {self._params.add(segments)}::text[])"
        if isinstance(value, dict):
            if not value:
                raise _invalid(path, "operator object is empty")
            return (
                "("
                + " AND ".join(
                    self.operator(field_sql, operator, operand, f"{path}.{operator}")
                    for operator, operand in value.items()
                )
                + ")"
            )
        return self.operator(field_sql, "$eq", value, path)

    def operator(self, field_sql: str, operator: str, operand: Any, path: str) -> str:
        self._conditions += 1
        if self._conditions > MAX_CONDITIONS:
            raise _invalid("filter", f"at most {MAX_CONDITIONS} conditions (use $in for a list of values)")
        if operator in ("$eq", "$ne"):
            if not (_is_scalar(operand) or isinstance(operand, list)):
                raise _invalid(path, f"{operator} compares with a scalar or a list")
            # SQL NULL would make the comparison unknown; JSON null is a value like any other.
            placeholder = "'null'" if operand is None else self._params.add(operand)
            if operator == "$eq":
                return f"{field_sql} = {placeholder}::jsonb"
            return f"{field_sql} IS DISTINCT FROM {placeholder}::jsonb"
        if operator in _COMPARISONS:
            sql_operator = _COMPARISONS[operator]
            if isinstance(operand, bool) or not isinstance(operand, int | float | str):
                raise _invalid(path, f"{operator} compares with a number or a string")
            if isinstance(operand, str):
                placeholder = self._params.add(operand)
                return (
                    f"(jsonb_typeof({field_sql}) = 'string' AND "
                    f"({field_sql} #>> '{{}}') {sql_operator} {placeholder}::text)"
                )
            placeholder = self._params.add(operand)
            return (
                f"(jsonb_typeof({field_sql}) = 'number' AND "
                f"({field_sql})::numeric {sql_operator} {placeholder}::numeric)"
            )
        if operator in ("$in", "$nin"):
            if (
                not isinstance(operand, list)
                or not operand
                or not all(_is_scalar(item) and item is not None for item in operand)
            ):
                raise _invalid(path, f"{operator} takes a non-empty list of non-null scalars")
            placeholder = self._params.add(operand)
            membership = f"coalesce({field_sql} = ANY({placeholder}::jsonb[]), false)"
            return membership if operator == "$in" else f"NOT {membership}"
        if operator == "$exists":
            if not isinstance(operand, bool):
                raise _invalid(path, "$exists takes true or false")
            return f"({field_sql} IS {'NOT ' if operand else ''}NULL)"
        raise _invalid(path, f"unknown operator {operator}; expected one of {', '.join(OPERATORS)}")
