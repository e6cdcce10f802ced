"""Proto3 JSON in, protobuf request out; protobuf reply out, proto3 JSON back.

Path variables, query parameters and the body are merged into one JSON document
that `google.protobuf.json_format` parses, so every field gets the standard
proto3 JSON mapping (camelCase or original names, enums by name, int64 as
strings, well-known types) and one place reports what is wrong with which field.
"""

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

from matcha.gateway.catalog import Route
from matcha.runtime.errors import Violations

# Well-known types whose JSON form is a single string or scalar, so a query parameter can carry them.
SCALAR_WELL_KNOWN_TYPES = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.FloatValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.BoolValue",
}
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)


def _resolve(descriptor: Descriptor, dotted: str) -> list[FieldDescriptor] | None:
    """The fields along a dotted path (`policy.dataClass`), or None when a name is unknown."""
    fields = []
    current: Descriptor | None = descriptor
    for name in dotted.split("."):
        field = _field(current, name) if current is not None else None
        if field is None:
            return None
        fields.append(field)
        current = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
    return fields


def _scalar_from_text(field: FieldDescriptor, text: str) -> object:
    """A path or query string as the JSON value json_format expects for the field."""
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.BoolValue":
            return _BOOLEANS.get(text.lower(), text)
        return text
    if field.type == FieldDescriptor.TYPE_BOOL:
        return _BOOLEANS.get(text.lower(), text)
    if field.type in _FLOAT_TYPES:
        try:
            return float(text)
        except ValueError:
            return text  # json_format accepts "NaN" and "Infinity", and reports anything else
    return text


def _is_query_addressable(field: FieldDescriptor) -> bool:
    return field.message_type is None or field.message_type.full_name in SCALAR_WELL_KNOWN_TYPES


def _assign(document: dict, fields: list[FieldDescriptor], value: object) -> None:
    """Sets `value` at the path of `fields` in a JSON document, replacing either spelling of each name."""
    for field in fields[:-1]:
        existing = document.pop(field.name, None) if field.name != field.json_name else None
        child = document.get(field.json_name, existing)
        if not isinstance(child, dict):
            child = {}
        document[field.json_name] = child
        document = child
    last = fields[-1]
    document.pop(last.name, None)
    document[last.json_name] = value


def _path_of(fields: list[FieldDescriptor]) -> str:
    return ".".join(field.name for field in fields)


def bind_parameters(
    route: Route,
    document: dict,
    path_variables: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    violations: Violations,
) -> None:
    """Adds path variables and query parameters to the request's JSON document."""
    descriptor = route.method.input_type
    bound: set[str] = set()
    for dotted, text in path_variables.items():
        fields = _resolve(descriptor, dotted)
        assert fields is not None  # checked when the catalog was built
        _assign(document, fields, _scalar_from_text(fields[-1], text))
        bound.add(_path_of(fields))
    if route.body == "*" and list(query):
        violations.add("query", "this route takes every field from its body; query parameters are not accepted")
        return
    grouped: dict[str, tuple[list[FieldDescriptor], list[object]]] = {}
    for name, text in query:
        fields = _resolve(descriptor, name)
        if fields is None:
            violations.add(name, "unknown query parameter")
            continue
        path = _path_of(fields)
        if path in bound or (route.body and fields[0].name == route.body):
            violations.add(name, "this field is bound by the path or the body")
            continue
        if not _is_query_addressable(fields[-1]):
            violations.add(name, "a message field cannot be set from a query parameter; set its fields instead")
            continue
        grouped.setdefault(path, (fields, []))[1].append(_scalar_from_text(fields[-1], text))
    for path, (fields, values) in grouped.items():
        if fields[-1].is_repeated:
            _assign(document, fields, values)
        elif len(values) > 1:
            violations.add(path, "given more than once")
        else:
            _assign(document, fields, values[0])


# Stands for a body that is not JSON at all (already reported), as opposed to a JSON `null`.
_MALFORMED = object()
# Deeper than any message of the contracts (Struct values included) needs; the JSON decoder and protobuf's
# parser recurse per level, so depth is bounded before either gets far.
MAX_JSON_DEPTH = 64
_TOO_DEEP = f"JSON nests deeper than {MAX_JSON_DEPTH} levels"


def _nests_too_deep(value: object) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _decode_one(raw: bytes, field: str, violations: Violations) -> object:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        violations.add(field, f"malformed JSON: {error}")
        return _MALFORMED
    except RecursionError:
        violations.add(field, _TOO_DEEP)
        return _MALFORMED
    if _nests_too_deep(value):
        violations.add(field, _TOO_DEEP)
        return _MALFORMED
    return value


def _decode_json(raw: bytes, violations: Violations) -> object:
    return _decode_one(raw, "body", violations) if raw.strip() else {}


def _decode_json_lines(raw: bytes, violations: Violations) -> list[object]:
    decoded = (
        _decode_one(line, f"body[{number}]", violations) for number, line in enumerate(raw.splitlines()) if line.strip()
    )
    return [item for item in decoded if item is not _MALFORMED]


# json_format reports a path as `at Message.field[0].sub` or a chain of `Failed to parse x field:`.
_AT_PATH = re.compile(r' at "?([A-Za-z_][\w.\[\]]*)"?\.*$')
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')
_NAMED_FIELD = re.compile(r"field (\w+) ")


def _violation_of(error: json_format.ParseError) -> tuple[str, str]:
    text = str(error).split("\n", 1)[0]
    chain = _FAILED_FIELD.findall(text)
    description = _FAILED_FIELD.sub("", text)
    unknown = _UNKNOWN_FIELD.search(description)
    at = _AT_PATH.search(description)
    if unknown:
        return ".".join([*chain, unknown.group(1)]), "unknown field"
    if at:
        description = description[: at.start()]
        path = at.group(1).rstrip(".")
        if "." in path:
            return path.split(".", 1)[1], description.rstrip(". ") or "invalid value"
    named = _NAMED_FIELD.search(description)
    field = ".".join(chain) or (named.group(1) if named else "body")
    return field, description.rstrip(". ") or "invalid value"


def _parse_document(document: object, message_class: type, violations: Violations, prefix: str) -> Message | None:
    if not isinstance(document, dict):
        violations.add(prefix or "body", "must be a JSON object")
        return None
    message = message_class()
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as error:
        field, description = _violation_of(error)
        violations.add(f"{prefix}.{field}" if prefix else field, description)
        return None
    return message


def _document_from_body(route: Route, decoded: object) -> object:
    if route.body in ("", "*"):
        return decoded
    return {route.method.input_type.fields_by_name[route.body].json_name: decoded}


def build_requests(
    route: Route,
    path_variables: Mapping[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    *,
    json_lines: bool = False,
) -> list[Message]:
    """The request messages of a call: one, or one per item for a client-streaming RPC.

    A client-streaming RPC takes a JSON array, or newline-delimited JSON when `json_lines`;
    path and query parameters apply to every item.
    """
    violations = Violations()
    if route.streams_requests:
        decoded = _decode_json_lines(body, violations) if json_lines else _decode_json(body, violations)
        if decoded is not _MALFORMED and not isinstance(decoded, list):
            violations.add("body", "a client-streaming route takes a JSON array of messages")
        items = decoded if isinstance(decoded, list) else []
        prefixes = [f"[{index}]" for index in range(len(items))]
    else:
        decoded = _decode_json(body, violations) if route.body else {}
        items, prefixes = [decoded], [""]
    messages = []
    for item, prefix in zip(items, prefixes, strict=True):
        if item is _MALFORMED:
            continue
        document = _document_from_body(route, item)
        if isinstance(document, dict):
            bind_parameters(route, document, path_variables, query, violations)
        message = _parse_document(document, route.request_class, violations, prefix)
        if message is not None:
            messages.append(message)
    violations.raise_if_any()
    return messages


def to_json_value(message: Message) -> object:
    """Proto3 JSON, with fields at their default value included so clients see every field.

    Repeated floats (embeddings, vectors) are converted in bulk beside json_format, which looks for
    each float's shortest decimal form one value at a time: that was most of the gateway's CPU on
    an Embed reply."""
    detached = list(_detach_float_arrays(message, ()))
    try:
        value = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    finally:
        for _, owner, field, values in detached:
            getattr(owner, field.name).extend(values)
    for path, _, _, values in detached:
        container = value
        for key in path[:-1]:
            container = container[key]
        container[path[-1]] = shortest_float32_json(values)
    return value


@functools.cache
def _holds_float_arrays(descriptor: Descriptor, visiting: frozenset = frozenset()) -> bool:
    if descriptor.full_name.startswith("google.protobuf.") or descriptor in visiting:
        return False
    return any(
        (field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT and field.is_repeated)
        or (
            field.message_type is not None
            and not field.message_type.GetOptions().map_entry
            and _holds_float_arrays(field.message_type, visiting | {descriptor})
        )
        for field in descriptor.fields
    )


def _detach_float_arrays(message: Message, path: tuple) -> Iterator[tuple[tuple, Message, FieldDescriptor, list]]:
    """Takes the repeated float fields out of `message` (and its sub-messages), with their JSON paths."""
    if not _holds_float_arrays(message.DESCRIPTOR):
        return
    for field, value in message.ListFields():
        if field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT and field.is_repeated:
            yield (*path, field.json_name), message, field, list(value)
            message.ClearField(field.name)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.is_repeated:
                for index, item in enumerate(value):
                    yield from _detach_float_arrays(item, (*path, field.json_name, index))
            else:
                yield from _detach_float_arrays(value, (*path, field.json_name))


def shortest_float32_json(values: list[float]) -> list:
    """The proto3 JSON of float32 values, as json_format writes them (the shortest decimal that reads back
    as the same float32; "NaN" and "Infinity" as strings), for a whole array at once."""
    single = np.asarray(values, dtype=np.float32)
    wide = single.astype(np.float64)
    shortest = wide.copy()
    with np.errstate(all="ignore"):
        exponent = np.floor(np.log10(np.abs(wide)))
    pending = np.isfinite(exponent)  # zeros, infinities and NaN stay as they are
    for digits in (6, 7, 8, 9):  # json_format tries the same precisions, in the same order
        if not pending.any():
            break
        indices = np.flatnonzero(pending)
        shift = digits - 1 - exponent[indices]
        scale = 10.0 ** np.abs(shift)
        # Powers of ten up to 1e22 are exact, so for ordinary magnitudes this is the nearest double to the
        # decimal, which Python prints as that decimal; elsewhere the float32 check below still holds.
        with np.errstate(over="ignore"):
            rounded = np.where(
                shift >= 0, np.round(wide[indices] * scale) / scale, np.round(wide[indices] / scale) * scale
            )
            exact = rounded.astype(np.float32) == single[indices]
        shortest[indices[exact]] = rounded[exact]
        pending[indices[exact]] = False
    converted = shortest.tolist()
    for index in np.flatnonzero(pending):  # not reached in practice; json_format's own rule as the fallback
        converted[index] = type_checkers.ToShortestFloat(values[index])
    for index in np.flatnonzero(~np.isfinite(wide)):
        converted[index] = "NaN" if np.isnan(wide[index]) else ("Infinity" if wide[index] > 0 else "-Infinity")
    return converted


def render(route: Route, reply: Message) -> object:
    value = to_json_value(reply)
    if route.response_body:
        # A reply with a field to return is a message of fields: a JSON object.
        assert isinstance(value, dict)
        return value.get(route.method.output_type.fields_by_name[route.response_body].json_name)
    return value
