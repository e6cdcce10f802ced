"""Types of the values a plan passes between steps, known at registration from the capability descriptors.

A step's output is its reply message, or what its `output` expression makes of it when that is a field path
(`response.results`) or a projection of one (`response.results.map(r, r.id)`); a fan-out makes a list of
them. References such as `steps.draft.output.text` are then checked field by field, and a whole expression
put into a request field is checked against that field's shape: a message or a list into a scalar, a scalar
into a message or a list. Whatever the checker cannot know (signal payloads, computed values, Struct and
Value fields) is `DYN` and accepted, to be checked at run time as before.
"""

import re
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from matcha.conductor import expressions


@dataclass(frozen=True)
class ValueType:
    kind: str  # "message", "list", "map", "scalar" or "dyn"
    message: Descriptor | None = None  # set exactly when kind is "message"
    element: "ValueType | None" = None
    scalar: str = ""

    def describe(self) -> str:
        if self.message is not None:
            return f"a {self.message.full_name} message"
        if self.kind == "list":
            return "a list"
        if self.kind == "map":
            return "a map"
        return f"a {self.scalar}" if self.kind == "scalar" else "a value"


DYN = ValueType("dyn")
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_ENUM: "enum name",
    FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_DOUBLE: "number",
}
# Well-known messages whose proto JSON form is a scalar (Timestamp, Duration, FieldMask, wrappers) or anything.
_AS_STRING = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"})
_AS_LIST = frozenset({"google.protobuf.ListValue"})
_ANYTHING = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Any"})
INPUT_TYPES = {
    "STRING": ValueType("scalar", scalar="string"),
    "INTEGER": ValueType("scalar", scalar="integer"),
    "NUMBER": ValueType("scalar", scalar="number"),
    "BOOLEAN": ValueType("scalar", scalar="boolean"),
    "LIST": ValueType("list", element=DYN),
    "OBJECT": ValueType("map", element=DYN),
}

# A field path from a typed root; a trailing `(` makes its last name a function (`.size()`), not a field.
_PATH = re.compile(
    r"(?<![\w.])(?P<root>steps\s*\.\s*(?P<step>[a-z][a-z0-9_]*)\s*\.\s*output|response|inputs\s*\.\s*(?P<input>[a-z][a-z0-9_]*))"
    r"(?P<fields>(?:\s*\.\s*[A-Za-z_]\w*)*)(?P<call>\s*\()?"
)
_PROJECTION = re.compile(
    r"^(?P<base>.+?)\s*\.\s*map\s*\(\s*(?P<var>[a-z_]\w*)\s*,\s*(?P=var)(?P<fields>(?:\s*\.\s*[A-Za-z_]\w*)+)\s*\)$"
)


def message_type(descriptor: Descriptor) -> ValueType:
    if descriptor.full_name in _AS_STRING:
        return ValueType("scalar", scalar="string")
    if descriptor.full_name in _AS_LIST:
        return ValueType("list", element=DYN)
    if descriptor.full_name in _ANYTHING or descriptor.full_name.startswith("google.protobuf."):
        return DYN
    return ValueType("message", message=descriptor)


def field_type(field: FieldDescriptor) -> ValueType:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        return ValueType("map", element=field_type(message.fields_by_name["value"]))
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert message is not None, "every message field has its message type"
        single = message_type(message)
    else:
        single = ValueType("scalar", scalar=_SCALARS.get(field.type, "integer"))
    return ValueType("list", element=single) if field.is_repeated else single


def _names(fields: str) -> list[str]:
    return [name.strip() for name in fields.split(".") if name.strip()]


def resolve(base: ValueType, names: list[str], shown: str) -> tuple[ValueType, str | None]:
    """The type at `base.names...`, or an error naming the first name that cannot be there."""
    for name in names:
        if base.kind in ("dyn", "map"):
            return (base.element or DYN) if base.kind == "map" else DYN, None
        if base.message is not None:
            field = base.message.fields_by_name.get(name)
            if field is None:
                return DYN, f"{shown}: {base.message.full_name} has no field {name!r}"
            base = field_type(field)
        else:
            return DYN, f"{shown}: {name!r} of {base.describe()}, which has no fields"
        shown = f"{shown}.{name}"
    return base, None


class PlanTypes:
    """The known types of a plan's inputs and of its steps' outputs."""

    def __init__(self, inputs: dict[str, ValueType]) -> None:
        self.inputs = inputs
        self.steps: dict[str, ValueType] = {}

    def _root(self, match: re.Match, response: ValueType | None) -> ValueType | None:
        if match["step"]:
            return self.steps.get(match["step"])
        if match["input"]:
            return self.inputs.get(match["input"])
        return response

    def problems(self, source: str, response: ValueType | None = None) -> list[str]:
        """Every reference in `source` to a field its value cannot have, macro variables over typed lists
        (`response.results.map(r, r.id)`) included."""
        found = []
        text = _without_strings(source)
        for match in _PATH.finditer(text):
            root = self._root(match, response)
            names = _names(match["fields"])
            function = names.pop() if match["call"] and names else ""  # `.size()`, `.map(...)`: not a field
            if root is None:
                continue
            shown = re.sub(r"\s+", "", match["root"])
            value, problem = resolve(root, names, shown)
            if problem:
                found.append(problem)
            elif function in _MACROS and value.kind == "list":
                found.extend(_macro_problems(text, match.end(), value.element or DYN))
        return found

    def of(self, source: str, response: ValueType | None = None) -> ValueType:
        """The type of an expression that is a field path or a projection of one; DYN otherwise."""
        source = source.strip()
        if projection := _PROJECTION.match(source):
            listed = self.of(projection["base"], response)
            if listed.kind != "list":
                return DYN
            element, problem = resolve(listed.element or DYN, _names(projection["fields"]), projection["var"])
            return DYN if problem else ValueType("list", element=element)
        match = _PATH.fullmatch(source)
        if match is None or match["call"]:
            return DYN
        root = self._root(match, response)
        if root is None:
            return DYN
        value, problem = resolve(root, _names(match["fields"]), match["root"])
        return DYN if problem else value


_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
_MACRO_VARIABLE = re.compile(r"\s*([a-z_]\w*)\s*,")


def _macro_problems(text: str, body_start: int, element: ValueType) -> list[str]:
    """Problems of the macro variable's field references inside the macro's parentheses."""
    variable = _MACRO_VARIABLE.match(text, body_start)
    if variable is None:
        return []
    depth, end = 1, variable.end()
    while end < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    name = variable[1]
    found = []
    for use in re.finditer(rf"(?<![\w.]){name}((?:\s*\.\s*[A-Za-z_]\w*)+)(\s*\()?", text[variable.end() : end]):
        names = _names(use[1])
        if use[2]:
            names.pop()
        _, problem = resolve(element, names, name)
        if problem:
            found.append(problem)
    return found


def _without_strings(source: str) -> str:
    """`source` with the text of its string literals blanked, so that names inside them are not references."""
    return re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", lambda m: " " * len(m[0]), source)


def mismatch(value: ValueType, field: FieldDescriptor, *, element: bool = False) -> str | None:
    """Why `value` cannot fill `field` (a repeated field's element when `element`), or None."""
    if value.kind == "dyn":
        return None
    expected = field_type(field)
    if element and expected.kind == "list":
        expected = expected.element or DYN
    if expected.kind == "dyn" or (expected.kind == "map" and value.kind == "map"):
        return None
    if expected.kind == "list":
        return None if value.kind == "list" else f"{value.describe()} into a repeated field"
    if expected.message is not None:
        if value.message is not None and value.message.full_name == expected.message.full_name:
            return None
        if value.kind in ("scalar", "list"):
            return f"{value.describe()} into a {expected.message.full_name} field"
        return None
    if expected.kind == "scalar" and value.kind in ("message", "list", "map"):
        return f"{value.describe()} into a {expected.scalar} field"
    return None


def interpolation_problem(value: ValueType) -> str | None:
    """Text made from a message or a list is its JSON: almost always a wrong reference."""
    if value.kind in ("message", "list", "map"):
        return f"{value.describe()} interpolated into text (name one of its fields)"
    return None


def template_sources(text: str) -> list[tuple[bool, str]]:
    """(is the whole string, expression) for every expression of a template string."""
    whole = expressions.whole_expression(text)
    if whole is not None:
        return [(True, whole)]
    return [(False, source) for is_expression, source in expressions.template_parts(text) if is_expression]
