"""PostgreSQL binary COPY of fixed-width rows, encoded and decoded by numpy.

Whole feature matrices and membership tables move in one buffer instead of one
Python object per value: the difference between seconds and minutes at a million rows.
"""

import numpy as np

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_WIDTHS = {">i2": 2, ">i4": 4, ">i8": 8, ">f8": 8}


def _row_dtype(column_types: list[str]) -> np.dtype:
    fields: list[tuple[str, str]] = [("field_count", ">i2")]
    for index, column_type in enumerate(column_types):
        fields += [(f"length_{index}", ">i4"), (f"value_{index}", column_type)]
    return np.dtype(fields)


def decode(buffer: bytes, column_types: list[str]) -> list[np.ndarray]:
    """Columns of a binary COPY whose columns are all non-null and of the given numpy types."""
    dtype = _row_dtype(column_types)
    body = memoryview(buffer)[len(_SIGNATURE) : len(buffer) - len(_TRAILER)]
    rows = np.frombuffer(body, dtype=dtype)
    return [rows[f"value_{index}"].astype(column_type[1:]) for index, column_type in enumerate(column_types)]


def encode(columns: list[tuple[np.ndarray, str]]) -> bytes:
    """A binary COPY buffer of equally long columns, each with its numpy type (`>i8`, `>f8`...)."""
    types = [column_type for _, column_type in columns]
    rows = np.empty(len(columns[0][0]), dtype=_row_dtype(types))
    rows["field_count"] = len(columns)
    for index, (values, column_type) in enumerate(columns):
        rows[f"length_{index}"] = _WIDTHS[column_type]
        rows[f"value_{index}"] = values
    return _SIGNATURE + rows.tobytes() + _TRAILER
