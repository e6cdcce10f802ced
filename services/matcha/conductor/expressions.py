"""CEL expressions and request templates; never `eval`.

A template string that is exactly "${expr}" takes the expression's value (any type);
"${expr}" inside a longer string is interpolated as text.
"""

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import cel

STEP_REFERENCE = re.compile(r"\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([^\"']+)[\"']\s*\])")
# Macros bind their own variables (`list.map(x, x * 2)`); they are not free variables.
MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
INPUT_REFERENCE = re.compile(r"\binputs\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([^\"']+)[\"']\s*\])")


class ExpressionError(Exception):
    """An expression that does not compile, or fails when evaluated."""


@dataclass(frozen=True)
class Expression:
    source: str
    variables: frozenset[str]
    steps: frozenset[str]
    inputs: frozenset[str]


@functools.lru_cache(maxsize=4096)
def _program(source: str):
    try:
        return cel.compile(source)
    except ValueError as error:
        # The library's message ends with a caret diagram; the first line says enough.
        raise ExpressionError(str(error).splitlines()[0]) from None


def parse(source: str) -> Expression:
    program = _program(source)
    return Expression(
        source=source,
        variables=frozenset(program.variables()) - set(MACRO_VARIABLE.findall(source)),
        steps=frozenset(a or b for a, b in STEP_REFERENCE.findall(source)),
        inputs=frozenset(a or b for a, b in INPUT_REFERENCE.findall(source)),
    )


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    try:
        return _program(source).execute(variables)
    except ExpressionError:
        raise
    except Exception as error:  # the library raises KeyError, TypeError, ZeroDivisionError...
        raise ExpressionError(f"{source!r}: {type(error).__name__}: {error}") from None


def template_parts(text: str) -> list[tuple[bool, str]]:
    """Splits a template string into (is_expression, text) parts; braces inside expressions may nest."""
    parts: list[tuple[bool, str]] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        depth, cursor, quote = 1, start + 2, ""
        while cursor < len(text) and depth:
            char = text[cursor]
            if quote:
                if char == "\\":
                    cursor += 1
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            cursor += 1
        if depth:
            raise ExpressionError(f"unterminated '${{' in {text!r}")
        if start > position:
            parts.append((False, text[position:start]))
        parts.append((True, text[start + 2 : cursor - 1].strip()))
        position = cursor
    if position < len(text):
        parts.append((False, text[position:]))
    return parts


def whole_expression(text: str) -> str | None:
    """The expression of a string that is exactly "${expr}", else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    parts = template_parts(text)
    return parts[0][1] if len(parts) == 1 and parts[0][0] else None


def template_expressions(value: Any) -> list[tuple[str, str]]:
    """Every (path suffix, expression) inside a template value, for validation."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.extend(("", source) for is_expression, source in template_parts(value) if is_expression)
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend((f".{key}{suffix}", source) for suffix, source in template_expressions(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend((f"[{index}]{suffix}", source) for suffix, source in template_expressions(item))
    return found


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def render(value: Any, variables: dict[str, Any]) -> Any:
    """The template with every expression replaced by its value."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        whole = whole_expression(value)
        if whole is not None:
            return evaluate(whole, variables)
        return "".join(
            _as_text(evaluate(source, variables)) if is_expression else source
            for is_expression, source in template_parts(value)
        )
    if isinstance(value, dict):
        return {key: render(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    return value
