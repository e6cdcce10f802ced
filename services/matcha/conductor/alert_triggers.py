"""Alert triggers in plain Python: which fields of a listening alert can feed a plan's inputs, the checks a trigger
passes at creation, and the inputs one alert gives its run.

Alerts arrive as the proto JSON of `matcha.classification.v1.WatchAlert` (field names as in the proto); the
follower converts them at the edge.
"""

import re
from typing import Any

from matcha.conductor.plans import PlanDef
from matcha.conductor.records import AlertTriggerSpec
from matcha.runtime.errors import Violations

ALERT_KINDS = ("NEW_SIGNAL", "SENTIMENT_SHIFT")
# The purpose of the alerts' posts (collected for listening only), so of the runs they start.
LISTENING_PURPOSE = "listening"
WATCH_ALERTS_METHOD = "matcha.classification.v1.ClassificationService/WatchAlerts"
GET_WATCH_METHOD = "matcha.classification.v1.ClassificationService/GetWatch"
LIST_WATCHES_METHOD = "matcha.classification.v1.ClassificationService/ListWatches"
# The classification service's reason when a watch does not exist (or no longer does).
WATCH_NOT_FOUND = "WATCH_NOT_FOUND"
# Trigger and watch names: as the classification service names watches.
NAME = re.compile(r"[a-z0-9_-]{1,63}")

_TEXT = frozenset({"STRING"})
_LIST = frozenset({"LIST"})
# Each alert field and the plan input types it may feed.
ALERT_FIELD_TYPES: dict[str, frozenset[str]] = {
    "watch": _TEXT,
    "sequence": frozenset({"INTEGER", "NUMBER"}),
    "kind": _TEXT,
    "summary": _TEXT,
    "window_start": _TEXT,
    "window_end": _TEXT,
    "topic": _TEXT,
    "strength": _TEXT,
    "shift": frozenset({"NUMBER"}),
    "terms": _LIST,
    "post_ids": _LIST,
    "post_texts": _LIST,
    "posts": _LIST,
    "alert": frozenset({"OBJECT"}),
}


def alert_kind(alert: dict[str, Any]) -> str:
    return str(alert.get("type", "")).removeprefix("ALERT_TYPE_")


def alert_sequence(alert: dict[str, Any]) -> int:
    return int(alert.get("sequence", 0))  # int64: a string in proto JSON


def alert_fields(alert: dict[str, Any]) -> dict[str, Any]:
    """The values a trigger's `alert_inputs` can name. A new signal's topic is its label, its terms and posts
    the signal's; a sentiment shift's, the tracked topic's name, terms and posts."""
    topic = alert.get("topic") or {}
    tracked = alert.get("tracked_topic") or {}
    found = topic or tracked
    posts = [
        {key: post.get(key, "") for key in ("id", "text", "time", "source")}
        for post in found.get("representative_posts", [])
    ]
    shift = topic.get("sentiment_shift", 0.0) if topic else tracked.get("shift", 0.0)
    return {
        "watch": alert.get("watch", ""),
        "sequence": alert_sequence(alert),
        "kind": alert_kind(alert),
        "summary": alert.get("summary", ""),
        "window_start": alert.get("window_start", ""),
        "window_end": alert.get("window_end", ""),
        "topic": topic.get("label", "") or tracked.get("name", ""),
        "strength": str(topic.get("strength", "")).removeprefix("SIGNAL_STRENGTH_"),
        "shift": float(shift),
        "terms": list(found.get("terms", [])),
        "post_ids": [post["id"] for post in posts],
        "post_texts": [post["text"] for post in posts],
        "posts": posts,
        "alert": alert,
    }


def latest_sequence(watches: list[dict[str, Any]]) -> int:
    """Where a new trigger's cursor starts: the latest alert of the watches it follows (GetWatch's or
    ListWatches' `Watch` as proto JSON), so that it starts runs for the alerts raised after it only."""
    return max((int(watch.get("last_alert_sequence", 0)) for watch in watches), default=0)


def run_inputs(spec: AlertTriggerSpec, alert: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the run an alert starts: the fixed ones, and the alert fields the mapping names."""
    fields = alert_fields(alert)
    return {**spec.fixed_inputs, **{name: fields[field] for name, field in spec.alert_inputs.items()}}


def check_names(spec: AlertTriggerSpec, violations: Violations) -> None:
    """What can be checked without the plan."""
    violations.check(bool(NAME.fullmatch(spec.name)), "trigger.name", "1 to 63 lowercase letters, digits, - or _")
    if spec.all_watches:
        violations.check(not spec.watch, "trigger.watch", "must be empty with all_watches")
    elif not spec.watch:
        violations.add("trigger.watch", "name a watch, or set all_watches to follow every watch of the tenant")
    else:
        violations.check(bool(NAME.fullmatch(spec.watch)), "trigger.watch", "not a watch name")
    violations.check(bool(spec.plan_name), "trigger.plan_name", "required")
    violations.check(spec.plan_version >= 0, "trigger.plan_version", "0 (the latest) or a version")
    for index, kind in enumerate(spec.kinds):
        violations.check(kind in ALERT_KINDS, f"trigger.kinds[{index}]", f"one of {', '.join(ALERT_KINDS)}")


def check_against_plan(spec: AlertTriggerSpec, plan: PlanDef, violations: Violations) -> None:
    """Every input the trigger feeds exists and takes what it is fed; every required input is fed."""
    known = {item.name: item for item in plan.inputs}
    for name, field in sorted(spec.alert_inputs.items()):
        path = f"trigger.alert_inputs.{name}"
        item = known.get(name)
        if item is None:
            violations.add(path, f"plan {plan.name!r} has no input {name!r}")
        elif field not in ALERT_FIELD_TYPES:
            violations.add(path, f"unknown alert field {field!r}; one of {', '.join(ALERT_FIELD_TYPES)}")
        elif item.type not in ALERT_FIELD_TYPES[field]:
            fits = " or ".join(sorted(ALERT_FIELD_TYPES[field]))
            violations.add(path, f"alert field {field!r} is {fits}; input {name!r} is {item.type}")
    for name, value in sorted(spec.fixed_inputs.items()):
        path = f"trigger.fixed_inputs.{name}"
        item = known.get(name)
        if item is None:
            violations.add(path, f"plan {plan.name!r} has no input {name!r}")
        elif name in spec.alert_inputs:
            violations.add(path, "also fed by an alert field (alert_inputs)")
        elif not item.accepts(value):
            violations.add(path, f"expected {item.type}, got {type(value).__name__}")
    for item in plan.inputs:
        fed = item.name in spec.alert_inputs or item.name in spec.fixed_inputs
        if item.required and item.default is None and not fed:
            violations.add(
                f"trigger.fixed_inputs.{item.name}", "required input: give it here or feed it from alert_inputs"
            )
