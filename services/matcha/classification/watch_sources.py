"""Sources a watch reads by itself: JSON Lines files dropped in a folder, RSS 2.0 and Atom feeds.

Each read returns records {"id", "text", "time" (Instant), "source", "where"} or {"error", "where"} for what
is not a post; the listening core decides what to keep. A source that cannot be read at all raises
SourceError with a reason the watch's status shows.
"""

import html
import json
import re
import xml.etree.ElementTree as ElementTree
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from matcha.classification.core import Instant, _instant_of
from matcha.runtime.egress import EgressRefused

PROCESSED_FOLDER = "processed"
MAX_FEED_BYTES = 5_000_000
MAX_FILE_BYTES = 50_000_000
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
ATOM = "{http://www.w3.org/2005/Atom}"


class SourceError(Exception):
    """The source could not be read; the message says why, without the content."""


# -- drop folder ----------------------------------------------------------------------------------


def ready_files(folder: str, sizes_seen: dict[str, int]) -> list[Path]:
    """`*.jsonl` files of the folder whose size did not change since the previous scan (a writer may still be
    writing the others). `sizes_seen` carries the sizes from one scan to the next."""
    path = Path(folder)
    if not path.is_dir():
        raise SourceError(f"{folder} is not a readable folder")
    ready, sizes = [], {}
    for entry in sorted(path.glob("*.jsonl")):
        if not entry.is_file():
            continue
        size = entry.stat().st_size
        sizes[entry.name] = size
        if sizes_seen.get(entry.name) == size:
            ready.append(entry)
    sizes_seen.clear()
    sizes_seen.update({name: size for name, size in sizes.items() if path.joinpath(name) not in ready})
    return ready


def read_drop_file(file: Path) -> list[dict[str, Any]]:
    if file.stat().st_size > MAX_FILE_BYTES:
        return [{"error": f"larger than {MAX_FILE_BYTES} bytes", "where": file.name}]
    records: list[dict[str, Any]] = []
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{file.name}:{number}"
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                records.append({"error": "not a JSON object", "where": where})
                continue
            if not isinstance(value, dict):
                records.append({"error": "not a JSON object", "where": where})
                continue
            time = _instant_of(value.get("time"))
            record = {
                "id": value.get("id") if isinstance(value.get("id"), str | int) else "",
                "text": value.get("text"),
                "source": value.get("source") if isinstance(value.get("source"), str) else "",
                "where": where,
            }
            if value.get("time") is None:
                record["error"] = "no time"
            elif time is None:
                record["error"] = "time is not RFC 3339 with an offset nor Unix seconds"
            else:
                record["time"] = time
            records.append(record)
    return records


def mark_processed(file: Path) -> None:
    done = file.parent / PROCESSED_FOLDER
    done.mkdir(exist_ok=True)
    file.rename(done / file.name)


# -- feeds ----------------------------------------------------------------------------------------


async def fetch_feed(client: httpx.AsyncClient, url: str, cursor: dict[str, str]) -> tuple[bytes | None, dict]:
    """The feed's bytes (None when unchanged since `cursor`) and the next cursor (ETag, Last-Modified)."""
    headers = {"accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8"}
    if cursor.get("etag"):
        headers["if-none-match"] = cursor["etag"]
    if cursor.get("last_modified"):
        headers["if-modified-since"] = cursor["last_modified"]
    try:
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code == 304:
                return None, cursor
            if response.status_code != 200:
                raise SourceError(f"HTTP {response.status_code} from the feed")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise SourceError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
            following = {
                key: value
                for key, value in (
                    ("etag", response.headers.get("etag", "")),
                    ("last_modified", response.headers.get("last-modified", "")),
                )
                if value
            }
            return bytes(body), following
    except EgressRefused as error:
        raise SourceError(f"refused by the egress policy: {error}") from None
    except httpx.HTTPError as error:
        raise SourceError(f"cannot fetch the feed: {type(error).__name__}") from None


def parse_feed(body: bytes, source: str) -> list[dict[str, Any]]:
    """Items of an RSS 2.0 (or 0.9x/1.0) or Atom feed; HTML or anything else is a SourceError."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise SourceError("not an RSS or Atom feed: the reply is not XML") from None
    tag = root.tag.rsplit("}", 1)[-1].lower()
    if tag == "feed" and root.tag.startswith(ATOM):
        entries = root.findall(f"{ATOM}entry")
        return [_atom_entry(entry, source, index) for index, entry in enumerate(entries)]
    if tag in ("rss", "rdf"):
        items = root.findall("./channel/item") or [
            element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "item"
        ]
        return [_rss_item(item, source, index) for index, item in enumerate(items)]
    raise SourceError(f"not an RSS or Atom feed: the document is <{tag}>")


def _text(value: str | None) -> str:
    """Feed text is often HTML: tags dropped, entities decoded, spaces collapsed."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", value or ""))).strip()


def _child(element, *names: str) -> str:
    for name in names:
        found = element.find(name)
        if found is not None and (found.text or "").strip():
            return found.text.strip()
    return ""


def _post(identifier: str, title: str, body: str, when: Instant | None, source: str, where: str) -> dict:
    text = ". ".join(part for part in (_text(title), _text(body)) if part)
    record: dict[str, Any] = {"id": identifier, "text": text, "source": source, "where": where}
    if when is None:
        record["error"] = "no publication time"
    else:
        record["time"] = when
    return record


def _rss_item(item, source: str, index: int) -> dict:
    identifier = _child(item, "guid", "link")
    when = None
    published = _child(item, "pubDate", "{http://purl.org/dc/elements/1.1/}date")
    if published:
        try:
            moment = parsedate_to_datetime(published)
            when = _instant_of(moment.isoformat()) if moment.tzinfo else None
        except (TypeError, ValueError):
            when = _instant_of(published)
    return _post(identifier, _child(item, "title"), _child(item, "description"), when, source, f"item {index + 1}")


def _atom_entry(entry, source: str, index: int) -> dict:
    identifier = _child(entry, f"{ATOM}id")
    if not identifier:
        link = entry.find(f"{ATOM}link")
        identifier = link.get("href", "") if link is not None else ""
    when = _instant_of(_child(entry, f"{ATOM}published", f"{ATOM}updated") or None)
    body = _child(entry, f"{ATOM}summary", f"{ATOM}content")
    return _post(identifier, _child(entry, f"{ATOM}title"), body, when, source, f"entry {index + 1}")
