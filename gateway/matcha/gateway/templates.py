"""`google.api.http` path templates, compiled to regular expressions.

Grammar (google/api/http.proto):
    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;
"""

import re
from dataclasses import dataclass

_SINGLE_SEGMENT = "[^/]+"
_ANY_SEGMENTS = ".+"


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class PathTemplate:
    template: str
    pattern: re.Pattern[str]
    # Field paths (e.g. `name`, `parent.id`) bound by the template, in order.
    variables: tuple[str, ...]
    verb: str
    literal_segments: int

    def match(self, path: str) -> dict[str, str] | None:
        matched = self.pattern.fullmatch(path)
        if matched is None:
            return None
        return {field: matched.group(f"v{index}") for index, field in enumerate(self.variables)}

    @property
    def openapi_path(self) -> str:
        """The template with `{field=sub/*}` reduced to `{field}`, as OpenAPI paths allow."""
        return re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", self.template)

    @property
    def specificity(self) -> tuple[int, int]:
        # A verb route (`/plans/{name}:export`) must win over `/plans/{name}`, whose variable would match `x:export`.
        return (1 if self.verb else 0, self.literal_segments)


def _split_verb(template: str) -> tuple[str, str]:
    depth, last_colon = 0, -1
    for index, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            last_colon = -1
        elif char == ":" and depth == 0:
            last_colon = index
    if last_colon < 0:
        return template, ""
    return template[:last_colon], template[last_colon + 1 :]


def _split_segments(path: str) -> list[str]:
    segments: list[str] = []
    depth = 0
    current: list[str] = []
    for char in path:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def _segment_pattern(segment: str, template: str) -> tuple[str, bool]:
    """Regex of one plain segment (no variable); True when it is a literal."""
    if segment == "*":
        return _SINGLE_SEGMENT, False
    if segment == "**":
        return _ANY_SEGMENTS, False
    if not segment or any(char in segment for char in "{}=*"):
        raise TemplateError(f"bad segment {segment!r} in {template!r}")
    return re.escape(segment), True


def parse_template(template: str) -> PathTemplate:
    if not template.startswith("/"):
        raise TemplateError(f"template must start with '/': {template!r}")
    path, verb = _split_verb(template)
    parts: list[str] = []
    variables: list[str] = []
    literals = 0
    for segment in _split_segments(path[1:]):
        if segment.startswith("{") and segment.endswith("}"):
            field, _, sub_template = segment[1:-1].partition("=")
            if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", field):
                raise TemplateError(f"bad variable {segment!r} in {template!r}")
            if sub_template:
                sub_parts = [_segment_pattern(sub, template)[0] for sub in sub_template.split("/")]
                inner = "/".join(sub_parts)
            else:
                inner = _SINGLE_SEGMENT
            parts.append(f"(?P<v{len(variables)}>{inner})")
            variables.append(field)
        else:
            pattern, is_literal = _segment_pattern(segment, template)
            parts.append(pattern)
            literals += is_literal
    regex = "/" + "/".join(parts) + (":" + re.escape(verb) if verb else "")
    return PathTemplate(template, re.compile(regex), tuple(variables), verb, literals)
