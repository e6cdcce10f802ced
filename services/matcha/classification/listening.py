"""Continuous listening: watches over sources of posts, analysed window by window, raising alerts.

A watch takes posts from its sources (pushed with IngestPosts, a drop folder, feeds), each counted once
by id. Posts are embedded and scored as they arrive (by the watch's owner, see `watch_scheduler`); when a
window closes, the signals over the look-back ending with it are computed as DetectSignals computes them,
with the sentiment of each tracked topic against the windows before; the report is stored, and what is new
raises alerts: a topic that became a weak or strong signal, a tracked topic whose sentiment moved.

Plain Python, like the rest of the core: the servicer converts at the edge.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from matcha.classification.core import ClassificationCore, Instant
from matcha.classification.sentiment import ModelRef
from matcha.classification.signals import (
    MERGE_SIMILARITY,
    PostInput,
    Representative,
    SignalParameters,
    SignalReport,
    Strength,
    Topic,
    detect_signals,
)
from matcha.classification.watch_store import (
    AlertRow,
    AnalysedPost,
    NewAlert,
    ReportRow,
    SourceRow,
    StoredPost,
    WatchRow,
    WatchStore,
)
from matcha.runtime import page_tokens
from matcha.runtime.data_map import SubjectHolding
from matcha.runtime.egress import EgressPolicy
from matcha.runtime.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied, Violations
from matcha.runtime.governance import CallContext, DataClass, RecordPolicy

logger = logging.getLogger(__name__)
LISTENING_PURPOSE = "listening"
# Creating, deleting and feeding a watch writes tenant data; reading reports and alerts is an analyst's.
WRITE_ROLE = "operator"
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SOURCE_KINDS = ("push", "drop_folder", "feed")
# A post may be stamped a little ahead of this clock (clock skew); further ahead it is refused.
MAX_FUTURE = timedelta(minutes=5)
DEFAULT_LOOK_BACK_WINDOWS = 14
DEFAULT_SHIFT_THRESHOLD = 0.3
DEFAULT_MIN_TOPIC_POSTS = 5
DEFAULT_DROP_POLL = timedelta(seconds=10)
DEFAULT_FEED_POLL = timedelta(minutes=5)
MAX_REPORT_TOPICS = 50
REPRESENTATIVES = 3
# K-means of a report is fitted on at most this many posts (the latest windows' first): a report over a day's
# look-back then takes seconds, not minutes (docs/benchmarks.md).
FIT_SAMPLE = 12_000
OLDER_THAN_LOOK_BACK = "older than the watch's look-back"
ALERT_NEW_SIGNAL = "NEW_SIGNAL"
ALERT_SENTIMENT_SHIFT = "SENTIMENT_SHIFT"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WatchLimits:
    max_sources: int = 20
    max_tracked_topics: int = 50
    max_terms: int = 50
    max_posts_per_call: int = 1000
    max_text_chars: int = 10_000
    max_id_chars: int = 256
    max_page_size: int = 200
    default_page_size: int = 50
    max_report_page_size: int = 100
    default_report_page_size: int = 10
    # Posts analysed per batch between closes (the rest wait for the next batch).
    analysis_batch: int = 512


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    path: str = ""
    url: str = ""
    poll_interval: Instant | None = None


@dataclass(frozen=True)
class TrackedTopicSpec:
    name: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatchSpec:
    name: str
    description: str = ""
    sources: list[SourceSpec] = field(default_factory=list)
    window: Instant | None = None
    look_back_windows: int = 0
    start_time: Instant | None = None
    grace: Instant | None = None
    tracked_topics: list[TrackedTopicSpec] = field(default_factory=list)
    min_topic_size: int = 0
    strong_share: float | None = None
    min_active_windows: int = 0
    min_growth_slope: float | None = None
    shift_threshold: float | None = None
    min_topic_posts: int = 0
    webhook_url: str = ""


@dataclass(frozen=True)
class WatchView:
    row: WatchRow
    sources: list[SourceRow]
    post_count: int
    # The latest alert the caller may read: where a follower of the alerts raised from now on starts.
    last_alert_sequence: int = 0


@dataclass(frozen=True)
class WatchPage:
    watches: list[WatchView]
    next_page_token: str


@dataclass(frozen=True)
class RawWatchPost:
    id: str
    text: str
    time: Instant | None
    source: str = ""
    data_class: DataClass | None = None
    consented_purposes: frozenset[str] = frozenset()
    subject_id: str = ""


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    duplicates: int
    late: int
    subjects: list[str]


@dataclass(frozen=True)
class TrackedSentiment:
    name: str
    post_count: int
    # Shares of negative, neutral, positive; None without posts.
    mix: tuple[float, float, float] | None
    balance: float
    baseline_post_count: int
    baseline_balance: float
    shift: float
    # What its posts are matched by, and a few of its posts in the window (an alert shows them).
    terms: tuple[str, ...] = ()
    representatives: tuple[Representative, ...] = ()


@dataclass(frozen=True)
class WindowReport:
    watch: str
    window_start: datetime
    window_end: datetime
    closed_at: datetime
    window_posts: int
    look_back_start: datetime
    window: timedelta
    signals: SignalReport
    tracked: list[TrackedSentiment]
    alert_count: int
    sources: list[dict[str, Any]]
    data_class: DataClass
    models: list[ModelRef]


@dataclass(frozen=True)
class ReportPage:
    reports: list[WindowReport]
    next_page_token: str
    withheld: int


@dataclass(frozen=True)
class Alert:
    sequence: int
    watch: str
    type: str
    created_at: datetime
    window_start: datetime
    window_end: datetime
    summary: str
    topic: Topic | None
    look_back_start: datetime | None
    window: timedelta
    previous_strength: Strength
    tracked: TrackedSentiment | None
    webhook_state: str
    webhook_attempts: int
    data_class: DataClass


# -- time -----------------------------------------------------------------------------------------


def instant_time(value: Instant) -> datetime | None:
    """A Timestamp's time, or None out of its range."""
    if not (-62135596800 <= value.seconds <= 253402300799 and 0 <= value.nanos < 1_000_000_000):
        return None
    return EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def instant_duration(value: Instant) -> timedelta | None:
    if value.seconds < 0 or not 0 <= value.nanos < 1_000_000_000:
        return None
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def window_of(watch: WatchRow, moment: datetime) -> tuple[datetime, datetime]:
    """The window of the watch's schedule that holds `moment`."""
    width = timedelta(seconds=watch.window_seconds)
    index = math.floor((moment - watch.start_time) / width)
    start = watch.start_time + width * index
    return start, start + width


def look_back_start(watch: WatchRow, window_end: datetime) -> datetime:
    return window_end - timedelta(seconds=watch.window_seconds) * watch.look_back_windows


# -- tracked topics -------------------------------------------------------------------------------


def topic_terms(topic: dict[str, Any]) -> list[str]:
    """What a tracked topic's posts are matched by: its terms, or its name alone when none is given."""
    return topic["terms"] or [topic["name"]]


def topic_pattern(topic: dict[str, Any]) -> re.Pattern:
    """Whole words or phrases, case-insensitive; the name alone when no term is given."""
    terms = topic_terms(topic)
    alternatives = "|".join(r"\s+".join(map(re.escape, term.split())) for term in terms)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _balance(sentiments: list[str | None]) -> float:
    if not sentiments:
        return 0.0
    return (sentiments.count("positive") - sentiments.count("negative")) / len(sentiments)


def tracked_sentiment(
    topic: dict[str, Any], window_posts: list[AnalysedPost], earlier_posts: list[AnalysedPost], min_posts: int
) -> TrackedSentiment:
    pattern = topic_pattern(topic)
    about = [post for post in window_posts if pattern.search(post.text)]
    current = [post.sentiment for post in about]
    baseline = [post.sentiment for post in earlier_posts if pattern.search(post.text)]
    mix = None
    if current:
        negative, neutral, positive = (
            current.count(polarity) / len(current) for polarity in ("negative", "neutral", "positive")
        )
        mix = (negative, neutral, positive)
    balance, baseline_balance = _balance(current), _balance(baseline)
    enough = len(current) >= min_posts and len(baseline) >= min_posts
    shift = balance - baseline_balance if enough else 0.0
    return TrackedSentiment(
        topic["name"],
        len(current),
        mix,
        balance,
        len(baseline),
        baseline_balance,
        shift,
        tuple(topic_terms(topic)),
        tracked_representatives(about, shift),
    )


def tracked_representatives(posts: list[AnalysedPost], shift: float) -> tuple[Representative, ...]:
    """The window's posts about a tracked topic that show its shift best: those of the shift's polarity (all of
    them when none is, or without a shift), closest to their centroid, as a signal's representatives are."""
    polarity = "negative" if shift < 0 else "positive"
    candidates = [post for post in posts if post.embedding is not None]
    if shift:
        candidates = [post for post in candidates if post.sentiment == polarity] or candidates
    if not candidates:
        return ()
    vectors = _unit_rows(np.vstack([post.embedding for post in candidates if post.embedding is not None]))
    centroid = _unit_rows(vectors.mean(axis=0, keepdims=True))[0]
    centrality = vectors @ centroid
    order = sorted(range(len(candidates)), key=lambda i: (-centrality[i], candidates[i].post_id))
    return tuple(
        Representative(
            PostInput(candidates[i].post_id, candidates[i].text, candidates[i].published_at, candidates[i].source),
            float(centrality[i]),
        )
        for i in order[:REPRESENTATIVES]
    )


# -- JSON of reports and alerts (stored, and sent to webhooks) ---------------------------------------


def _time(value: datetime) -> str:
    return value.isoformat()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def topic_json(topic: Topic) -> dict[str, Any]:
    return {
        "id": topic.id,
        "label": topic.label,
        "terms": topic.terms,
        "strength": topic.strength.name,
        "post_count": topic.post_count,
        "share": topic.share,
        "counts": topic.counts,
        "growth_slope": topic.growth_slope,
        "first_seen": _time(topic.first_seen),
        "last_seen": _time(topic.last_seen),
        "source_count": topic.source_count,
        "source_diversity": topic.source_diversity,
        "sentiment_mix": list(topic.sentiment_mix) if topic.sentiment_mix is not None else None,
        "sentiment_shift": topic.sentiment_shift,
        "representatives": _representatives_json(topic.representatives),
    }


def topic_from_json(value: dict[str, Any]) -> Topic:
    return Topic(
        id=value["id"],
        label=value["label"],
        terms=value["terms"],
        strength=Strength[value["strength"]],
        post_count=value["post_count"],
        share=value["share"],
        counts=value["counts"],
        growth_slope=value["growth_slope"],
        first_seen=_parse_time(value["first_seen"]),
        last_seen=_parse_time(value["last_seen"]),
        source_count=value["source_count"],
        source_diversity=value["source_diversity"],
        sentiment_mix=tuple(value["sentiment_mix"]) if value["sentiment_mix"] is not None else None,
        sentiment_shift=value["sentiment_shift"],
        representatives=_representatives_from_json(value["representatives"]),
    )


def _representatives_json(representatives) -> list[dict[str, Any]]:
    return [
        {
            "id": chosen.post.id,
            "text": chosen.post.text,
            "time": _time(chosen.post.time),
            "source": chosen.post.source,
            "centrality": chosen.centrality,
        }
        for chosen in representatives
    ]


def _representatives_from_json(values: list[dict[str, Any]]) -> list[Representative]:
    return [
        Representative(
            PostInput(chosen["id"], chosen["text"], _parse_time(chosen["time"]), chosen["source"]),
            chosen["centrality"],
        )
        for chosen in values
    ]


def tracked_json(tracked: TrackedSentiment) -> dict[str, Any]:
    return {
        "name": tracked.name,
        "post_count": tracked.post_count,
        "mix": list(tracked.mix) if tracked.mix is not None else None,
        "balance": tracked.balance,
        "baseline_post_count": tracked.baseline_post_count,
        "baseline_balance": tracked.baseline_balance,
        "shift": tracked.shift,
        "terms": list(tracked.terms),
        "representatives": _representatives_json(tracked.representatives),
    }


def tracked_from_json(value: dict[str, Any]) -> TrackedSentiment:
    return TrackedSentiment(
        value["name"],
        value["post_count"],
        tuple(value["mix"]) if value["mix"] is not None else None,
        value["balance"],
        value["baseline_post_count"],
        value["baseline_balance"],
        value["shift"],
        # Reports and alerts stored before tracked topics kept their terms and posts have neither.
        tuple(value.get("terms", ())),
        tuple(_representatives_from_json(value.get("representatives", []))),
    )


def scrub_posts(body: dict[str, Any], post_ids: set[str]) -> dict[str, Any]:
    """A stored report or alert without the representative posts of `post_ids` (erased)."""
    topics = body.get("topics", []) + ([body["topic"]] if body.get("topic") else [])
    # A report keeps a list of tracked topics, a sentiment shift alert its one.
    tracked = body.get("tracked") or []
    topics += tracked if isinstance(tracked, list) else [tracked]
    for topic in topics:
        if "representatives" in topic:
            topic["representatives"] = [chosen for chosen in topic["representatives"] if chosen["id"] not in post_ids]
    return body


def report_from_row(row: ReportRow) -> WindowReport:
    body = row.report
    return WindowReport(
        watch=row.watch,
        window_start=row.window_start,
        window_end=row.window_end,
        closed_at=row.closed_at,
        window_posts=row.window_posts,
        look_back_start=_parse_time(body["look_back_start"]),
        window=timedelta(seconds=body["window_seconds"]),
        signals=SignalReport(
            [topic_from_json(topic) for topic in body["topics"]], body["post_count"], body["unclustered_post_count"]
        ),
        tracked=[tracked_from_json(tracked) for tracked in body["tracked"]],
        alert_count=row.alert_count,
        sources=body["sources"],
        data_class=row.data_class,
        models=[ModelRef(model_id, version) for model_id, version in body["models"]],
    )


def alert_from_row(row: AlertRow) -> Alert:
    body = row.alert
    return Alert(
        sequence=row.sequence,
        watch=row.watch,
        type=row.type,
        created_at=row.created_at,
        window_start=_parse_time(body["window_start"]),
        window_end=row.window_end,
        summary=body["summary"],
        topic=topic_from_json(body["topic"]) if body.get("topic") else None,
        look_back_start=_parse_time(body["look_back_start"]) if body.get("look_back_start") else None,
        window=timedelta(seconds=body.get("window_seconds", 0)),
        previous_strength=Strength[body.get("previous_strength", "NOISE")],
        tracked=tracked_from_json(body["tracked"]) if body.get("tracked") else None,
        webhook_state=row.webhook_state,
        webhook_attempts=row.webhook_attempts,
        data_class=row.data_class,
    )


def _source_snapshot(row: SourceRow) -> dict[str, Any]:
    return {
        "source": row.source,
        "state": row.state,
        "accepted_posts": row.accepted_posts,
        "duplicate_posts": row.duplicate_posts,
        "rejected_posts": row.rejected_posts,
        "last_rejection": row.last_rejection,
        "last_error": row.last_error,
        "last_attempt_at": _time(row.last_attempt_at) if row.last_attempt_at else None,
        "last_success_at": _time(row.last_success_at) if row.last_success_at else None,
    }


def source_from_snapshot(value: dict[str, Any]) -> SourceRow:
    return SourceRow(
        source=value["source"],
        state=value["state"],
        accepted_posts=value["accepted_posts"],
        duplicate_posts=value["duplicate_posts"],
        rejected_posts=value["rejected_posts"],
        last_rejection=value["last_rejection"],
        last_error=value["last_error"],
        last_attempt_at=_parse_time(value["last_attempt_at"]) if value["last_attempt_at"] else None,
        last_success_at=_parse_time(value["last_success_at"]) if value["last_success_at"] else None,
        cursor={},
    )


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


def _centroids(topics: list[Topic], members: dict[str, np.ndarray], dimension: int) -> np.ndarray:
    if not topics:
        return np.zeros((0, dimension), dtype=np.float32)
    return _unit_rows(np.vstack([members[topic.id].mean(axis=0) for topic in topics])).astype(np.float32)


# -- the core -------------------------------------------------------------------------------------


class ListeningCore:
    def __init__(
        self,
        store: WatchStore,
        analysis: ClassificationCore,
        *,
        limits: WatchLimits | None = None,
        drop_folder_roots: tuple[str, ...] = (),
        webhook_key: bytes = b"",
        egress: EgressPolicy | None = None,
    ) -> None:
        self.store = store
        self._analysis = analysis
        self.limits = limits or WatchLimits()
        self._drop_roots = tuple(root.rstrip("/") for root in drop_folder_roots)
        self._webhook_key = webhook_key
        self.egress = egress or EgressPolicy()
        # Called when a watch is created here, so that this replica's scheduler picks it up at once.
        self._created_hooks: list = []

    def on_created(self, hook) -> None:
        self._created_hooks.append(hook)

    # -- watches ----------------------------------------------------------------------------------

    async def create_watch(self, call: CallContext, spec: WatchSpec) -> WatchView:
        _require_listening(call)
        call.require_role(WRITE_ROLE)
        row = self._validated(call, spec)
        created = await self.store.create(row)
        if created is None:
            raise AlreadyExists(
                f"watch {spec.name!r} already exists", reason="WATCH_EXISTS", metadata={"watch": spec.name}
            )
        for hook in self._created_hooks:
            hook()
        return WatchView(created, await self.store.sources(call.tenant, spec.name), 0)

    def webhook_secret(self, watch: WatchRow) -> str:
        """The secret a watch's webhook POSTs are signed with: derived from the service's key and the watch
        (tenant, name, creation time), so that it is stored nowhere and a watch made again gets another."""
        if not watch.webhook_url:
            return ""
        identity = json.dumps([watch.tenant, watch.name, _time(watch.created_at)]).encode()
        return hmac.new(self._webhook_key, identity, hashlib.sha256).hexdigest()

    async def get_watch(self, call: CallContext, name: str) -> WatchView:
        _require_listening(call)
        row = await self._watch(call, name)
        since = look_back_start(row, row.next_window_end)
        sequences = await self.store.last_alert_sequences(call.tenant, [name], call.data_class)
        return WatchView(
            row,
            await self.store.sources(call.tenant, name),
            await self.store.post_count(call.tenant, name, since),
            sequences.get(name, 0),
        )

    async def list_watches(self, call: CallContext, page_size: int, page_token: str) -> WatchPage:
        _require_listening(call)
        violations = Violations()
        violations.check(0 <= page_size <= self.limits.max_page_size, "page_size", f"0 to {self.limits.max_page_size}")
        after = _decode_token(violations, page_token)
        violations.raise_if_any()
        size = page_size or self.limits.default_page_size
        rows = await self.store.list_watches(call.tenant, after or "", size + 1)
        page = rows[:size]
        sequences = await self.store.last_alert_sequences(call.tenant, [row.name for row in page], call.data_class)
        views = []
        for row in page:
            since = look_back_start(row, row.next_window_end)
            views.append(
                WatchView(
                    row,
                    await self.store.sources(call.tenant, row.name),
                    await self.store.post_count(call.tenant, row.name, since),
                    sequences.get(row.name, 0),
                )
            )
        token = page_tokens.encode(WATCHES_LISTING, rows[size - 1].name) if len(rows) > size else ""
        return WatchPage(views, token)

    async def delete_watch(self, call: CallContext, name: str) -> tuple[int, int, int]:
        call.require_role(WRITE_ROLE)
        deleted = await self.store.delete(call.tenant, name) if NAME.match(name) else None
        if deleted is None:
            raise _watch_not_found(name)
        return deleted

    async def _watch(self, call: CallContext, name: str) -> WatchRow:
        # A name no watch can have (a NUL character PostgreSQL refuses, ...) is not looked up.
        row = await self.store.get(call.tenant, name) if NAME.match(name) else None
        if row is None:
            raise _watch_not_found(name)
        return row

    def _validated(self, call: CallContext, spec: WatchSpec) -> WatchRow:
        violations = Violations()
        limits = self.limits
        violations.check(
            bool(NAME.match(spec.name)),
            "watch.name",
            "1-63 lowercase letters, digits, '-' or '_', starting with a letter",
        )
        violations.check(len(spec.description) <= 1000, "watch.description", "at most 1,000 characters")
        violations.check("\x00" not in spec.description, "watch.description", "must not hold a NUL character")
        sources = []
        if violations.check(
            0 < len(spec.sources) <= limits.max_sources, "watch.sources", f"1 to {limits.max_sources} sources"
        ):
            names: set[str] = set()
            for index, source in enumerate(spec.sources):
                sources.append(self._validated_source(violations, f"watch.sources[{index}]", source, names))
        window = _duration(violations, "watch.window", spec.window, required=True)
        if window is not None:
            violations.check(
                timedelta(seconds=1) <= window <= timedelta(days=7), "watch.window", "between 1 second and 7 days"
            )
        look_back = spec.look_back_windows or DEFAULT_LOOK_BACK_WINDOWS
        violations.check(3 <= look_back <= 1000, "watch.look_back_windows", "3 to 1000")
        grace = _duration(violations, "watch.grace", spec.grace, required=False) or timedelta()
        violations.check(grace <= timedelta(days=1), "watch.grace", "0 to 1 day")
        now = datetime.now(UTC)
        start = now
        if spec.start_time is not None:
            requested = instant_time(spec.start_time)
            if requested is None:
                violations.add("watch.start_time", "not a valid timestamp")
            else:
                start = requested
        tracked = []
        if violations.check(
            len(spec.tracked_topics) <= limits.max_tracked_topics,
            "watch.tracked_topics",
            f"at most {limits.max_tracked_topics}",
        ):
            names = set()
            for index, topic in enumerate(spec.tracked_topics):
                path = f"watch.tracked_topics[{index}]"
                if not topic.name.strip() or len(topic.name) > 64 or "\x00" in topic.name:
                    violations.add(f"{path}.name", "1 to 64 characters")
                elif topic.name in names:
                    violations.add(f"{path}.name", f"duplicate tracked topic {topic.name!r}")
                names.add(topic.name)
                violations.check(len(topic.terms) <= limits.max_terms, f"{path}.terms", f"at most {limits.max_terms}")
                for term_index, term in enumerate(topic.terms):
                    violations.check(
                        0 < len(term.strip()) <= 100 and "\x00" not in term,
                        f"{path}.terms[{term_index}]",
                        "1 to 100 characters, no NUL",
                    )
                tracked.append({"name": topic.name, "terms": [term.strip() for term in topic.terms]})
        defaults = SignalParameters
        thresholds = {
            "min_topic_size": spec.min_topic_size or defaults.min_topic_size,
            "strong_share": defaults.strong_share if spec.strong_share is None else spec.strong_share,
            "min_active_windows": spec.min_active_windows or defaults.min_active_windows,
            "min_growth_slope": defaults.min_growth_slope if spec.min_growth_slope is None else spec.min_growth_slope,
        }
        violations.check(2 <= thresholds["min_topic_size"] <= 1000, "watch.thresholds.min_topic_size", "2 to 1000")
        violations.check(0.0 < thresholds["strong_share"] <= 1.0, "watch.thresholds.strong_share", "in (0, 1]")
        violations.check(thresholds["min_active_windows"] >= 2, "watch.thresholds.min_active_windows", "2 or more")
        violations.check(
            math.isfinite(thresholds["min_growth_slope"]), "watch.thresholds.min_growth_slope", "a finite number"
        )
        shift = DEFAULT_SHIFT_THRESHOLD if spec.shift_threshold is None else spec.shift_threshold
        violations.check(0.0 < shift <= 2.0, "watch.sentiment_shift_threshold", "in (0, 2]")
        min_posts = spec.min_topic_posts or DEFAULT_MIN_TOPIC_POSTS
        violations.check(1 <= min_posts <= 10_000, "watch.min_topic_posts", "1 to 10,000")
        if spec.webhook_url:
            self._check_destination(violations, "watch.webhook_url", spec.webhook_url)
        violations.raise_if_any("watch has invalid fields")
        assert window is not None  # required: its absence was refused above
        first_end = window_of_start(start, window, now)
        return WatchRow(
            tenant=call.tenant,
            name=spec.name,
            description=spec.description,
            sources=sources,
            window_seconds=window.total_seconds(),
            look_back_windows=look_back,
            start_time=start,
            grace_seconds=grace.total_seconds(),
            tracked_topics=tracked,
            thresholds=thresholds,
            shift_threshold=shift,
            min_topic_posts=min_posts,
            webhook_url=spec.webhook_url,
            creator=call.principal.subject,
            data_class=call.data_class,
            created_at=now,
            next_window_end=first_end,
            report_count=0,
        )

    def drop_folder_allowed(self, folder: str) -> bool:
        """Under one of the allowed folders, links resolved: checked at creation and again at every read (a
        folder may have been replaced by a link since)."""
        return any(_within(folder, root) for root in self._drop_roots)

    def _validated_source(self, violations: Violations, path: str, source: SourceSpec, names: set[str]) -> dict:
        if not NAME.match(source.name):
            violations.add(f"{path}.name", "1-63 lowercase letters, digits, '-' or '_', starting with a letter")
        elif source.name in names:
            violations.add(f"{path}.name", f"duplicate source {source.name!r}")
        names.add(source.name)
        value: dict[str, Any] = {"name": source.name, "kind": source.kind}
        if source.kind not in SOURCE_KINDS:
            violations.add(path, "choose push, drop_folder or feed")
            return value
        if source.kind == "push":
            return value
        default = DEFAULT_DROP_POLL if source.kind == "drop_folder" else DEFAULT_FEED_POLL
        poll = _duration(violations, f"{path}.{source.kind}.poll_interval", source.poll_interval, required=False)
        poll = poll or default
        violations.check(
            timedelta(seconds=1) <= poll <= timedelta(days=1),
            f"{path}.{source.kind}.poll_interval",
            "1 second to 1 day",
        )
        value["poll_seconds"] = poll.total_seconds()
        if source.kind == "drop_folder":
            folder = source.path.rstrip("/")
            allowed = (
                folder.startswith("/")
                and ".." not in folder.split("/")
                and "\x00" not in folder
                and self.drop_folder_allowed(folder)
            )
            violations.check(
                allowed,
                f"{path}.drop_folder.path",
                "an absolute path under a folder the service allows (MATCHA_CLASSIFICATION_DROP_FOLDER_ROOTS"
                + (f": {', '.join(self._drop_roots)})" if self._drop_roots else ", empty here)"),
            )
            value["path"] = folder
        else:
            self._check_destination(violations, f"{path}.feed.url", source.url)
            value["url"] = source.url
        return value

    def _check_destination(self, violations: Violations, path: str, url: str) -> None:
        """An http(s) URL the egress policy does not refuse outright (names are checked again at each connection)."""
        if not _is_http_url(url):
            violations.add(path, "an http or https URL")
        elif refusal := self.egress.refusal(url):
            violations.add(path, f"{refusal} (MATCHA_CLASSIFICATION_EGRESS_ALLOWED_NETWORKS)")

    # -- posts ------------------------------------------------------------------------------------

    async def ingest(
        self, call: CallContext, watch_name: str, source_name: str, posts: list[RawWatchPost]
    ) -> IngestOutcome:
        _require_listening(call)
        call.require_role(WRITE_ROLE)
        watch = await self._watch(call, watch_name)
        pushes = [source["name"] for source in watch.sources if source["kind"] == "push"]
        if source_name:
            if source_name not in pushes:
                raise FailedPrecondition(
                    f"watch {watch_name!r} has no push source {source_name!r}",
                    reason="NOT_A_PUSH_SOURCE",
                    metadata={"watch": watch_name, "source": source_name},
                )
        elif len(pushes) != 1:
            raise FailedPrecondition(
                f"watch {watch_name!r} has {len(pushes)} push sources: name one in `source`"
                if pushes
                else f"watch {watch_name!r} has no push source",
                reason="NOT_A_PUSH_SOURCE",
                metadata={"watch": watch_name},
            )
        source_name = source_name or pushes[0]
        violations = Violations()
        limit = self.limits.max_posts_per_call
        now = datetime.now(UTC)
        stored: dict[str, StoredPost] = {}
        duplicates = 0
        if violations.check(0 < len(posts) <= limit, "posts", f"1 to {limit} posts"):
            for index, post in enumerate(posts):
                path = f"posts[{index}]"
                time, reason = self._post_time(watch, post.time, now)
                if reason:
                    violations.add(f"{path}.time", reason)
                violations.check_text(f"{path}.text", post.text, self.limits.max_text_chars)
                for name, value in (
                    ("id", post.id),
                    ("text", post.text),
                    ("source", post.source),
                    ("policy.subject_id", post.subject_id),
                ):
                    violations.check("\x00" not in value, f"{path}.{name}", "must not hold a NUL character")
                violations.check(
                    len(post.id) <= self.limits.max_id_chars,
                    f"{path}.id",
                    f"at most {self.limits.max_id_chars} characters",
                )
                policy = RecordPolicy.submitted(
                    call, post.data_class, post.consented_purposes, post.source or source_name, post.subject_id
                )
                violations.check(
                    policy.permits(LISTENING_PURPOSE),
                    f"{path}.policy.consented_purposes",
                    f"a {policy.data_class.name} post must consent to the purpose {LISTENING_PURPOSE!r}",
                )
                violations.check(
                    policy.data_class <= call.data_class,
                    f"{path}.policy.data_class",
                    f"{policy.data_class.name} is above the call's declared class {call.data_class.name}",
                )
                if time is None or not post.text.strip() or "\x00" in post.text + post.id + post.source:
                    continue
                post_id = post.id or _post_digest(policy.source, time, post.text)
                if post_id in stored:
                    duplicates += 1
                    continue
                stored[post_id] = StoredPost(
                    post_id,
                    post.text,
                    time,
                    policy.source,
                    policy.data_class,
                    sorted(policy.consented_purposes),
                    policy.subject_id,
                )
        violations.raise_if_any("posts are not valid")
        accepted = await self.store.insert_posts(
            call.tenant, watch.name, source_name, list(stored.values()), repeated=duplicates
        )
        closed_before = watch.next_window_end - timedelta(seconds=watch.window_seconds)
        late = sum(stored[post_id].published_at < closed_before for post_id in accepted)
        return IngestOutcome(
            len(accepted),
            duplicates + len(stored) - len(accepted),
            late,
            sorted({stored[post_id].subject_id for post_id in accepted if stored[post_id].subject_id}),
        )

    def _post_time(self, watch: WatchRow, value: Instant | None, now: datetime) -> tuple[datetime | None, str]:
        """The post's time, or why it is refused: missing, not a time, ahead of now, older than the look-back."""
        if value is None:
            return None, "is required"
        time = instant_time(value)
        if time is None:
            return None, "not a valid timestamp"
        if time > now + MAX_FUTURE:
            return None, f"{_time(time)} is in the future (more than {MAX_FUTURE.seconds // 60} minutes ahead)"
        _, current_end = window_of(watch, now)
        oldest = look_back_start(watch, max(current_end, watch.next_window_end))
        if time < oldest:
            return None, OLDER_THAN_LOOK_BACK
        return time, ""

    async def ingest_records(
        self,
        watch: WatchRow,
        source_name: str,
        records: list[dict[str, Any]],
        data_class: DataClass,
        *,
        skip_old: bool = False,
    ) -> tuple[int, int, int, str]:
        """Posts read by the service itself (drop folder lines, feed items): invalid ones are counted as rejected
        with the last reason, the others stored. Returns accepted, duplicates, rejected, last rejection.
        `skip_old`: records older than the look-back are left out without counting (a feed keeps its old items
        and is read again and again)."""
        now = datetime.now(UTC)
        stored: dict[str, StoredPost] = {}
        rejected, reason, duplicates = 0, "", 0
        for record in records:
            problem = record.get("error", "")
            text = record.get("text")
            time = None
            if not problem:
                if not isinstance(text, str) or not text.strip():
                    problem = "no text"
                elif "\x00" in text + str(record.get("id") or "") + str(record.get("source") or ""):
                    problem = "a NUL character"
                elif len(text) > self.limits.max_text_chars:
                    problem = f"text longer than {self.limits.max_text_chars} characters"
                else:
                    instant = record.get("time")
                    time, problem = self._post_time(watch, instant, now) if instant is not None else (None, "no time")
            if problem == OLDER_THAN_LOOK_BACK and skip_old:
                continue
            if problem:
                rejected += 1
                reason = f"{record.get('where', '')}: {problem}".lstrip(": ")
                continue
            # A record without a problem has its text and its time.
            assert isinstance(text, str) and time is not None
            source = str(record.get("source") or source_name)
            post_id = str(record.get("id") or "") or _post_digest(source, time, text)
            if post_id in stored:
                duplicates += 1
                continue
            stored[post_id] = StoredPost(
                post_id[: self.limits.max_id_chars], text, time, source, data_class, [LISTENING_PURPOSE], ""
            )
        accepted = await self.store.insert_posts(
            watch.tenant, watch.name, source_name, list(stored.values()), repeated=duplicates
        )
        return len(accepted), duplicates + len(stored) - len(accepted), rejected, reason

    # -- analysis, reports, alerts ----------------------------------------------------------------

    async def analyse_pending(self, watch: WatchRow, before: datetime) -> int:
        """Embeds and scores the watch's posts not analysed yet (published before `before`), one batch."""
        pending = await self.store.unanalysed_posts(watch.tenant, watch.name, before, self.limits.analysis_batch)
        if pending:
            embeddings, scores = await self._analysis.analyse([post.text for post in pending])
            await self.store.save_analysis(
                watch.tenant,
                watch.name,
                [post.post_id for post in pending],
                embeddings,
                [score.label for score in scores],
                [score.model for score in scores],
            )
        return len(pending)

    async def close_window(self, watch: WatchRow, owner: str) -> tuple[WindowReport, list[int]]:
        """Closes the watch's next window: its report and alerts, stored if `owner` still holds the watch."""
        window = timedelta(seconds=watch.window_seconds)
        end = watch.next_window_end
        start = end - window
        first = look_back_start(watch, end)
        started = time.perf_counter()
        while await self.analyse_pending(watch, end) == self.limits.analysis_batch:
            pass
        analysed = time.perf_counter()
        posts = await self.store.posts_between(watch.tenant, watch.name, first, end)
        loaded = time.perf_counter()
        posts = [post for post in posts if post.embedding is not None]
        vectors = [post.embedding for post in posts if post.embedding is not None]
        window_posts = [post for post in posts if post.published_at >= start]
        earlier = [post for post in posts if post.published_at < start]
        sentiment_models = {post.sentiment_model for post in posts if post.sentiment_model is not None}
        models = [self._analysis.embedding_model, *sorted(sentiment_models, key=lambda model: model.id)]
        dimension = len(vectors[0]) if vectors else 0
        if posts:
            embeddings = np.vstack(vectors)
            parameters = SignalParameters(
                window=window,
                window_count=watch.look_back_windows,
                end=end,
                max_topics=MAX_REPORT_TOPICS,
                representative_count=REPRESENTATIVES,
                fit_sample=FIT_SAMPLE,
                **watch.thresholds,
            )
            inputs = [PostInput(post.post_id, post.text, post.published_at, post.source) for post in posts]
            report, members = await self._analysis.run_cpu(
                _signals_with_members, inputs, embeddings, [post.sentiment for post in posts], parameters
            )
        else:
            report, members = SignalReport([], 0, 0), {}
        tracked = [
            tracked_sentiment(topic, window_posts, earlier, watch.min_topic_posts) for topic in watch.tracked_topics
        ]
        data_class = max((post.data_class for post in posts), default=DataClass.PUBLIC)
        signal_topics = [topic for topic in report.topics if topic.strength != Strength.NOISE]
        centroids = _centroids(signal_topics, members, dimension)
        previous = await self.store.previous_report(watch.tenant, watch.name, end)
        alerts = self._alerts(watch, start, end, first, signal_topics, centroids, tracked, previous, data_class)
        sources = await self.store.sources(watch.tenant, watch.name)
        closed_at = datetime.now(UTC)
        body = {
            "look_back_start": _time(first),
            "window_seconds": watch.window_seconds,
            "post_count": report.post_count,
            "unclustered_post_count": report.unclustered_post_count,
            "topics": [topic_json(topic) for topic in report.topics],
            "tracked": [tracked_json(item) for item in tracked],
            "sources": [_source_snapshot(source) for source in sources],
            "models": [[model.id, model.version] for model in models],
        }
        shown = sorted({chosen.post.id for topic in [*report.topics, *tracked] for chosen in topic.representatives})
        row = ReportRow(watch.name, start, end, closed_at, len(window_posts), body, centroids, data_class, len(alerts))
        next_end = end + window
        computed = time.perf_counter()
        sequences = await self.store.save_report(watch, owner, next_end, row, shown, alerts)
        logger.info(
            "window reported",
            extra={
                "watch": watch.name,
                "posts": len(posts),
                "alerts": len(alerts),
                "analyse_seconds": round(analysed - started, 3),
                "load_seconds": round(loaded - analysed, 3),
                "report_seconds": round(computed - loaded, 3),
                "store_seconds": round(time.perf_counter() - computed, 3),
            },
        )
        # Posts older than the next report's look-back serve nothing more.
        await self.store.forget_posts_before(watch.tenant, watch.name, first + window)
        return report_from_row(row), sequences

    def _alerts(
        self,
        watch: WatchRow,
        start: datetime,
        end: datetime,
        first: datetime,
        signal_topics: list[Topic],
        centroids: np.ndarray,
        tracked: list[TrackedSentiment],
        previous: ReportRow | None,
        data_class: DataClass,
    ) -> list[NewAlert]:
        alerts = []
        common = {"window_start": _time(start), "look_back_start": _time(first), "window_seconds": watch.window_seconds}
        previous_strengths: list[Strength] = []
        previous_centroids = np.zeros((0, centroids.shape[1] if centroids.ndim == 2 else 0), dtype=np.float32)
        if previous is not None:
            previous_strengths = [
                Strength[topic["strength"]] for topic in previous.report["topics"] if topic["strength"] != "NOISE"
            ]
            if previous_strengths and centroids.size:
                previous_centroids = previous.centroids.reshape(len(previous_strengths), -1)
        for index, topic in enumerate(signal_topics):
            before = Strength.NOISE
            if len(previous_strengths) and previous_centroids.shape[0]:
                similarity = previous_centroids @ centroids[index]
                close = [previous_strengths[i] for i in np.flatnonzero(similarity >= MERGE_SIMILARITY)]
                before = max(close, key=lambda strength: strength.value, default=Strength.NOISE)
            if topic.strength.value <= before.value:
                continue
            summary = (
                f"{'strong' if topic.strength == Strength.STRONG else 'weak'} signal in {watch.name!r}: "
                f"{topic.label} ({topic.post_count} posts, {topic.share:.0%} of the look-back"
                + (f", was {before.name.lower()}" if before != Strength.NOISE else "")
                + ")"
            )
            alerts.append(
                NewAlert(
                    ALERT_NEW_SIGNAL,
                    {**common, "summary": summary, "topic": topic_json(topic), "previous_strength": before.name},
                    [chosen.post.id for chosen in topic.representatives],
                    data_class,
                )
            )
        previously_shifted = {}
        if previous is not None:
            previously_shifted = {item["name"]: item["shift"] for item in previous.report["tracked"]}
        for item in tracked:
            if abs(item.shift) < watch.shift_threshold:
                continue
            earlier = previously_shifted.get(item.name, 0.0)
            if abs(earlier) >= watch.shift_threshold and math.copysign(1, earlier) == math.copysign(1, item.shift):
                continue  # the same shift, already alerted on when it began
            direction = "souring" if item.shift < 0 else "improving"
            summary = (
                f"sentiment on {item.name!r} {direction} in {watch.name!r}: balance {item.balance:+.2f} over "
                f"{item.post_count} posts against {item.baseline_balance:+.2f} over {item.baseline_post_count} before"
            )
            # The window's class, as a new signal's: at least that of every post it shows, so a reader below it
            # gets neither the alert nor its posts.
            alerts.append(
                NewAlert(
                    ALERT_SENTIMENT_SHIFT,
                    {**common, "summary": summary, "tracked": tracked_json(item)},
                    [chosen.post.id for chosen in item.representatives],
                    data_class,
                )
            )
        return alerts

    async def list_reports(self, call: CallContext, watch_name: str, page_size: int, page_token: str) -> ReportPage:
        _require_listening(call)
        violations = Violations()
        limit = self.limits.max_report_page_size
        violations.check(0 <= page_size <= limit, "page_size", f"0 to {limit}")
        before = None
        listing = page_tokens.listing_key("watch reports", watch_name)
        position = page_tokens.decode(violations, page_token, listing)
        if position is not None:
            try:
                before = datetime.fromisoformat(position)
            except (TypeError, ValueError):
                violations.add("page_token", page_tokens.INVALID)
        violations.raise_if_any()
        await self._watch(call, watch_name)
        size = page_size or self.limits.default_report_page_size
        rows = await self.store.reports(call.tenant, watch_name, before, size + 1)
        page = rows[:size]
        token = page_tokens.encode(listing, _time(page[-1].window_end)) if len(rows) > size else ""
        visible = [report_from_row(row) for row in page if row.data_class <= call.data_class]
        return ReportPage(visible, token, len(page) - len(visible))

    async def watch_alerts(
        self,
        call: CallContext,
        watch_name: str,
        after_sequence: int,
        *,
        from_start: bool = False,
        poll_seconds: float = 5.0,
    ) -> AsyncIterator[Alert]:
        _require_listening(call)
        violations = Violations()
        violations.check(after_sequence >= 0, "after_sequence", "must not be negative")
        violations.raise_if_any()
        followed = await self._watch(call, watch_name) if watch_name else None  # NOT_FOUND before streaming
        with self.store.alerts.subscribe(call.tenant) as woken:
            last = after_sequence if after_sequence or from_start else await self.store.last_alert_sequence(call.tenant)
            while True:
                woken.clear()
                rows = await self.store.alerts_after(call.tenant, watch_name, last)
                for row in rows:
                    if row.data_class <= call.data_class:
                        yield alert_from_row(row)
                if rows:
                    last = rows[-1].sequence
                    continue
                # The poll covers a notification lost while the listener reconnects.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), poll_seconds)
                if followed is not None:
                    await self._still_there(followed)

    async def _still_there(self, watch: WatchRow) -> None:
        """NOT_FOUND once the watch a stream follows is deleted, also when one of the same name was made since
        (its alerts are another watch's): a follower learns it at once, not when it reconnects."""
        current = await self.store.get(watch.tenant, watch.name)
        if current is None or current.created_at != watch.created_at:
            raise _watch_not_found(watch.name)

    # -- data subjects ----------------------------------------------------------------------------

    async def erase_subject(self, tenant: str, subject_id: str) -> int:
        erased, by_watch = await self.store.erase_subject(tenant, subject_id)
        for watch, post_ids in by_watch:
            await self.store.scrub(tenant, watch, post_ids, scrub_posts)
        return erased

    async def describe_subject(self, tenant: str, subject_id: str, ceiling: DataClass) -> list[SubjectHolding]:
        return await self.store.describe_subject(tenant, subject_id, ceiling)


def _signals_with_members(
    posts: list[PostInput], embeddings: np.ndarray, sentiments: list[str], parameters: SignalParameters
) -> tuple[SignalReport, dict[str, np.ndarray]]:
    """detect_signals, plus each topic's member embeddings (for its centroid)."""
    report, assignment = detect_signals(posts, embeddings, sentiments, parameters, with_assignment=True)
    members = {f"t{index + 1}": embeddings[assignment == index] for index in range(int(assignment.max()) + 1)}
    return report, members


def window_of_start(start: datetime, window: timedelta, now: datetime) -> datetime:
    """End of the first window to close: the one holding `now` (windows before it are past)."""
    index = math.floor((now - start) / window)
    return start + window * (max(index, 0) + 1)


def _require_listening(call: CallContext) -> None:
    if call.purpose != LISTENING_PURPOSE:
        raise PermissionDenied(
            f"watches serve the purpose {LISTENING_PURPOSE!r}, not {call.purpose!r}",
            reason="PURPOSE_MISMATCH",
            metadata={"purpose": call.purpose, "required": LISTENING_PURPOSE},
        )


def _watch_not_found(name: str) -> NotFound:
    return NotFound(f"watch {name!r} does not exist", reason="WATCH_NOT_FOUND", metadata={"watch": name})


def _within(folder: str, root: str) -> bool:
    """`folder` is `root` or under it, symbolic links resolved (a link inside the root may not lead out)."""
    real_folder, real_root = os.path.realpath(folder), os.path.realpath(root)
    under = real_folder == real_root or real_folder.startswith(real_root.rstrip("/") + "/")
    return under and (folder == root or folder.startswith(root + "/"))


def _is_http_url(url: str) -> bool:
    if "\x00" in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 2000


def _duration(violations: Violations, path: str, value: Instant | None, *, required: bool) -> timedelta | None:
    if value is None:
        if required:
            violations.add(path, "is required")
        return None
    duration = instant_duration(value)
    if duration is None:
        violations.add(path, "a non-negative duration")
    return duration


def _post_digest(source: str, time: datetime, text: str) -> str:
    return "sha256:" + hashlib.sha256(json.dumps([source, _time(time), text]).encode()).hexdigest()


WATCHES_LISTING = page_tokens.listing_key("watches")


def _decode_token(violations: Violations, token: str) -> str | None:
    """The watch name a ListWatches page starts after."""
    name = page_tokens.decode(violations, token, WATCHES_LISTING)
    if name is not None and not (isinstance(name, str) and NAME.match(name)):
        violations.add("page_token", page_tokens.INVALID)
        return None
    return name
