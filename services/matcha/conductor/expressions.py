"""CEL expressions and request templates; never `eval`.

A template string that is exactly "${expr}" takes the expression's value (any type);
"${expr}" inside a longer string is interpolated as text.

Expressions are bounded. At registration: their length and how deeply comprehension macros nest. When run:
the CEL library holds the GIL for the whole evaluation, so one costly expression would freeze the event loop
(and with it every lease the replica renews). An evaluation whose estimated cost is small runs in place; a
costlier one runs in a worker process killed at its time limit; one past the cost ceiling is refused unrun.
"""

import asyncio
import contextlib
import functools
import json
import multiprocessing
import re
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

import cel

STEP_REFERENCE = re.compile(r"\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([^\"']+)[\"']\s*\])")
# Macros bind their own variables (`list.map(x, x * 2)`); they are not free variables.
MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
INPUT_REFERENCE = re.compile(r"\binputs\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([^\"']+)[\"']\s*\])")


MAX_SOURCE_CHARS = 4096
MAX_MACRO_NESTING = 3
MACRO_CALL = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\($")


class ExpressionError(Exception):
    """An expression that does not compile, or fails when evaluated."""


class ExpressionBudgetExceeded(ExpressionError):
    """An evaluation refused, or stopped, because of its cost."""


@dataclass(frozen=True)
class Expression:
    source: str
    variables: frozenset[str]
    steps: frozenset[str]
    inputs: frozenset[str]
    macro_nesting: int


def macro_nesting(source: str) -> int:
    """How deeply comprehension macros (`map`, `filter`, `all`, `exists`, `exists_one`) nest: the exponent of
    an evaluation's cost in the size of the lists it walks."""
    deepest, open_calls, quote, index = 0, [], "", 0
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            is_macro = bool(MACRO_CALL.search(source[max(0, index - 24) : index + 1]))
            open_calls.append(is_macro)
            deepest = max(deepest, sum(open_calls))
        elif char == ")" and open_calls:
            open_calls.pop()
        index += 1
    return deepest


@functools.lru_cache(maxsize=4096)
def _program(source: str):
    try:
        return cel.compile(source)
    except ValueError as error:
        # The library's message ends with a caret diagram; the first line says enough.
        raise ExpressionError(str(error).splitlines()[0]) from None


def parse(source: str) -> Expression:
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(f"longer than {MAX_SOURCE_CHARS} characters ({len(source)})")
    nesting = macro_nesting(source)
    if nesting > MAX_MACRO_NESTING:
        raise ExpressionError(f"comprehension macros nest {nesting} deep, at most {MAX_MACRO_NESTING}")
    program = _program(source)
    return Expression(
        source=source,
        variables=frozenset(program.variables()) - set(MACRO_VARIABLE.findall(source)),
        steps=frozenset(a or b for a, b in STEP_REFERENCE.findall(source)),
        inputs=frozenset(a or b for a, b in INPUT_REFERENCE.findall(source)),
        macro_nesting=nesting,
    )


def _flatten(lists: object) -> list:
    """`flatten([[a, b], [c]])` is `[a, b, c]`: how a fan-out crosses two lists (segments by variants)."""
    if not isinstance(lists, list) or not all(isinstance(inner, list) for inner in lists):
        raise TypeError("flatten() takes a list of lists")
    return [value for inner in lists for value in inner]


def _join(values: object, separator: str) -> str:
    """`join(['a', 'b'], ', ')` is `'a, b'`."""
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise TypeError("join() takes a list of strings")
    return separator.join(values)


# Functions the conductor adds to standard CEL; both walk their argument once, like a macro.
FUNCTIONS: dict[str, Callable[..., Any]] = {"flatten": _flatten, "join": _join}


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    """Evaluates in place, unbounded: for the evaluator below and for callers whose inputs are their own."""
    try:
        return _program(source).execute(cel.Context(variables, functions=FUNCTIONS))
    except ExpressionError:
        raise
    except Exception as error:  # the library raises KeyError, TypeError, ZeroDivisionError...
        raise ExpressionError(f"{source!r}: {type(error).__name__}: {error}") from None


def _largest_collection(value: Any, *, limit: int) -> int:
    """The size of the largest list or map inside `value`, looking at no more than `limit` elements in all."""
    largest, pending, seen = 0, [value], 0
    while pending and seen < limit:
        item = pending.pop()
        if isinstance(item, dict):
            largest, seen = max(largest, len(item)), seen + len(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            largest, seen = max(largest, len(item)), seen + len(item)
            pending.extend(item)
    return largest


@functools.lru_cache(maxsize=4096)
def _parsed(source: str) -> Expression:
    return parse(source)


def estimated_cost(source: str, variables: dict[str, Any], *, ceiling: int) -> int:
    """Elements visited, at most: each nesting level of comprehensions may walk the largest collection among
    the values the expression names (only those are walked, so costing stays proportional to them)."""
    expression = _parsed(source)
    if expression.macro_nesting == 0:
        return 1
    named = [variables[name] for name in expression.variables - {"steps"} if name in variables]
    if "steps" in expression.variables:
        steps = variables.get("steps", {})
        named += [steps.get(step) for step in expression.steps] if expression.steps else [steps]
    return max(1, _largest_collection(named, limit=ceiling)) ** expression.macro_nesting


@dataclass(frozen=True)
class ExpressionBudget:
    inline_cost: int = 20_000  # run in place up to this estimate (well under 100 ms)
    max_cost: int = 50_000_000  # refused unrun above
    timeout_seconds: float = 2.0  # a costlier evaluation is stopped after this


def _worker(connection) -> None:
    while True:
        try:
            source, variables = connection.recv()
        except EOFError:
            return
        try:
            connection.send((True, evaluate(source, variables)))
        except ExpressionError as error:
            connection.send((False, str(error)))


class ExpressionEvaluator:
    """Evaluates plan expressions within an `ExpressionBudget`; costly ones in a worker process of its own."""

    def __init__(self, budget: ExpressionBudget | None = None) -> None:
        self.budget = budget or ExpressionBudget()
        self._process: SpawnProcess | None = None
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def evaluate(self, source: str, variables: dict[str, Any]) -> Any:
        cost = estimated_cost(source, variables, ceiling=self.budget.max_cost)
        if cost <= self.budget.inline_cost:
            return evaluate(source, variables)
        if cost > self.budget.max_cost:
            raise ExpressionBudgetExceeded(
                f"{source!r}: estimated cost {cost} elements is above the budget of {self.budget.max_cost}"
            )
        async with self._lock:
            return await self._in_worker(source, variables)

    async def render(self, value: Any, variables: dict[str, Any]) -> Any:
        """The template with every expression replaced by its value."""
        if isinstance(value, str):
            if "${" not in value:
                return value
            whole = whole_expression(value)
            if whole is not None:
                return await self.evaluate(whole, variables)
            parts = [
                _as_text(await self.evaluate(source, variables)) if is_expression else source
                for is_expression, source in template_parts(value)
            ]
            return "".join(parts)
        if isinstance(value, dict):
            return {key: await self.render(item, variables) for key, item in value.items()}
        if isinstance(value, list):
            return [await self.render(item, variables) for item in value]
        return value

    async def _in_worker(self, source: str, variables: dict[str, Any]) -> Any:
        if self._process is None or not self._process.is_alive():
            context = multiprocessing.get_context("spawn")  # no copy of this process's threads and sockets
            self._connection, child = context.Pipe()
            self._process = context.Process(target=_worker, args=(child,), daemon=True, name="cel-evaluator")
            self._process.start()
            child.close()
        connection = self._connection
        assert connection is not None, "opened with the process"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, connection.send, (source, variables))
        ready = await loop.run_in_executor(None, connection.poll, self.budget.timeout_seconds)
        if not ready:
            self.close()
            raise ExpressionBudgetExceeded(f"{source!r}: stopped after {self.budget.timeout_seconds:g} s")
        ok, value = await loop.run_in_executor(None, connection.recv)
        if not ok:
            raise ExpressionError(value)
        return value

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
            self._process = None
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
            self._connection = None


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
