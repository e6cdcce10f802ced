"""Plan documents: parsing, validation against the capability descriptors and as a DAG, canonical form.

A plan is a YAML or JSON document with the field names of `matcha.conductor.v1.PlanSpec`.
Every problem is reported at once, as field violations naming the step and field.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import grpc
import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from matcha.conductor import expressions, plan_types
from matcha.conductor.catalog import CapabilityCatalog, MethodInfo
from matcha.conductor.plan_types import PlanTypes, ValueType
from matcha.runtime import pii
from matcha.runtime.errors import FailedPrecondition, InvalidArgument, Violations
from matcha.runtime.governance import DataClass
from matcha.runtime.retry import Backoff

PLAN_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_DOCUMENT_BYTES = 1024 * 1024
INPUT_TYPES = ("STRING", "INTEGER", "NUMBER", "BOOLEAN", "LIST", "OBJECT")
# Every kind the personal-data engine finds; a bare `redact` covers them all.
PII_KINDS = tuple(sorted(pii.ALL_KINDS))
DEFAULT_RETRY_CODES = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED")
NEVER_RETRIED = frozenset({"INVALID_ARGUMENT", "PERMISSION_DENIED"})
STATUS_CODES = frozenset(code.name for code in grpc.StatusCode)
DEFAULT_RUN_DEADLINE_SECONDS = 24 * 3600.0
DEFAULT_CALL_TIMEOUT_SECONDS = 60.0
PLAN_KEYS = frozenset({"name", "description", "inputs", "steps", "outputs", "deadline", "purposes"})
INPUT_KEYS = frozenset({"name", "type", "required", "default_value", "description", "data_class"})
STEP_KEYS = frozenset(
    {"id", "description", "call", "await", "request", "depends_on", "when", "for_each", "output", "retry", "timeout"}
    | {"redact"}
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_JSON_TYPES = {
    "STRING": (str,),
    "INTEGER": (int,),
    "NUMBER": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "OBJECT": (dict,),
}
# Well-known types whose proto JSON form is not an object of their fields.
_OPAQUE_MESSAGES = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.Any",
    }
)


@dataclass(frozen=True)
class InputDef:
    name: str
    type: str  # one of INPUT_TYPES
    required: bool = False
    default: Any = None
    description: str = ""
    data_class: DataClass | None = None

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) and self.type != "BOOLEAN":
            return False
        if self.type == "INTEGER" and isinstance(value, float):
            return value.is_integer()
        return isinstance(value, _JSON_TYPES[self.type])


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    codes: frozenset[str] = frozenset(DEFAULT_RETRY_CODES)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.initial_backoff, self.max_backoff, self.multiplier)


@dataclass(frozen=True)
class RedactPolicy:
    fields: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset(PII_KINDS)
    rehydrate: bool = False


@dataclass(frozen=True)
class StepDef:
    id: str
    call: str | None = None
    await_key: str = ""
    await_roles: tuple[str, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # explicit and implied by expressions
    when: str = ""
    for_each_items: str = ""
    for_each_concurrency: int = 4
    output: str = ""
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    redact: RedactPolicy | None = None

    @property
    def is_await(self) -> bool:
        return self.call is None


@dataclass(frozen=True)
class PlanDef:
    name: str
    inputs: tuple[InputDef, ...]
    steps: tuple[StepDef, ...]
    outputs: dict[str, str]
    deadline_seconds: float
    purposes: frozenset[str]
    # Canonical JSON-ready form: what is stored, hashed and exported.
    spec: dict[str, Any]

    @property
    def sha256(self) -> str:
        return spec_digest(self.spec)

    def step(self, step_id: str) -> StepDef:
        return next(step for step in self.steps if step.id == step_id)


def spec_digest(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_document(document: str, plan_format: str | None) -> tuple[dict[str, Any], str]:
    """YAML or JSON text to a dict; returns the format it was read as ("YAML" or "JSON")."""
    if len(document.encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument("plan document too large", violations=_one("document", "at most 1 MiB"))
    detected = plan_format or ("JSON" if document.lstrip().startswith("{") else "YAML")
    try:
        content = json.loads(document) if detected == "JSON" else yaml.safe_load(document)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidArgument(
            "plan document is not valid " + detected, violations=_one("document", _first_line(error))
        ) from None
    if not isinstance(content, dict):
        raise InvalidArgument("plan document must be a mapping", violations=_one("document", "expected a mapping"))
    return content, detected


def render_document(spec: dict[str, Any], plan_format: str) -> str:
    if plan_format == "JSON":
        return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120)


def _one(field_path: str, description: str):
    violations = Violations()
    violations.add(field_path, description)
    return violations.items


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _duration(value: Any, path: str, violations: Violations) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value.strip())) and float(match[1]) > 0:
        return float(match[1])
    violations.add(path, "expected a positive duration such as '30s' or '1.5s'")
    return None


def _format_duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _enum_name(value: Any, prefix: str, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().upper().removeprefix(prefix)
    return name if name in allowed else None


class PlanDigestMismatch(FailedPrecondition):
    """A stored plan whose content no longer matches the digest it was registered with."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message, reason="PLAN_DIGEST_MISMATCH", **details)


class PlanValidator:
    """Turns a plan dict into a `PlanDef`, or refuses it with every violation found."""

    def __init__(self, catalog: CapabilityCatalog) -> None:
        self._catalog = catalog

    def validate_stored(self, spec: dict[str, Any], sha256: str) -> "PlanDef":
        """A stored plan rebuilt into its executable form, refused when its row was altered since it was
        registered (what runs is what was registered, reviewed and audited)."""
        plan = self.validate(spec)
        if plan.sha256 != sha256:
            raise PlanDigestMismatch(f"stored plan {plan.name!r} does not match its registered SHA-256")
        return plan

    def validate(self, content: dict[str, Any]) -> PlanDef:
        violations = Violations()
        for key in sorted(set(content) - PLAN_KEYS):
            violations.add(key, "unknown field of a plan")
        name = content.get("name")
        violations.check(
            isinstance(name, str) and bool(PLAN_NAME.match(name)),
            "name",
            "1 to 63 lowercase letters, digits and '-', starting with a letter",
        )
        inputs = self._inputs(content.get("inputs") or [], violations)
        input_names = {item.name for item in inputs}
        raw_steps = content.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            violations.add("steps", "a plan needs at least one step")
            raw_steps = []
        # As written: `_step` refuses any that is not an identifier.
        step_ids: list[Any] = [raw.get("id") for raw in raw_steps if isinstance(raw, dict)]
        types = self._types(inputs, raw_steps)
        steps = []
        for index, raw in enumerate(raw_steps):
            step = self._step(raw, f"steps[{index}]", set(step_ids), input_names, types, violations)
            if step is not None:
                steps.append(step)
        seen: set[str] = set()
        for index, step_id in enumerate(step_ids):
            if step_id in seen:
                violations.add(f"steps[{index}].id", f"duplicate step id {step_id!r}")
            seen.add(step_id)
        self._check_acyclic(steps, violations)
        outputs = content.get("outputs") or {}
        if not isinstance(outputs, dict):
            violations.add("outputs", "expected a mapping of output name to CEL expression")
            outputs = {}
        for key, source in outputs.items():
            self._expression(
                source, f"outputs.{key}", {"inputs", "steps", "run"}, set(step_ids), input_names, violations, types
            )
        deadline = DEFAULT_RUN_DEADLINE_SECONDS
        if content.get("deadline") is not None:
            deadline = _duration(content["deadline"], "deadline", violations) or deadline
        purposes = content.get("purposes") or []
        if not isinstance(purposes, list) or not all(isinstance(item, str) and item for item in purposes):
            violations.add("purposes", "expected a list of purpose names")
            purposes = []
        if isinstance(content.get("description", ""), str) is False:
            violations.add("description", "expected a string")
        violations.raise_if_any("plan is invalid")
        assert isinstance(name, str), "a name that is not one is a violation above"
        plan = PlanDef(
            name=name,
            inputs=tuple(inputs),
            steps=tuple(steps),
            outputs=dict(outputs),
            deadline_seconds=deadline,
            purposes=frozenset(purposes),
            spec={},
        )
        spec = _canonical(content, plan)
        return PlanDef(**{**plan.__dict__, "spec": spec})

    def _inputs(self, raw_inputs: Any, violations: Violations) -> list[InputDef]:
        if not isinstance(raw_inputs, list):
            violations.add("inputs", "expected a list of inputs")
            return []
        inputs, names = [], set()
        for index, raw in enumerate(raw_inputs):
            path = f"inputs[{index}]"
            if not isinstance(raw, dict):
                violations.add(path, "expected a mapping")
                continue
            for key in sorted(set(raw) - INPUT_KEYS):
                violations.add(f"{path}.{key}", "unknown field of an input")
            name = raw.get("name")
            if not (isinstance(name, str) and IDENTIFIER.match(name)):
                violations.add(f"{path}.name", "lowercase letters, digits and '_', starting with a letter")
                continue
            if name in names:
                violations.add(f"{path}.name", f"duplicate input {name!r}")
            names.add(name)
            input_type = _enum_name(raw.get("type"), "INPUT_TYPE_", INPUT_TYPES)
            if input_type is None:
                violations.add(f"{path}.type", "one of " + ", ".join(INPUT_TYPES))
                continue
            data_class = None
            if raw.get("data_class") is not None:
                class_name = _enum_name(raw["data_class"], "DATA_CLASS_", tuple(DataClass.__members__))
                if class_name is None:
                    violations.add(f"{path}.data_class", "one of " + ", ".join(DataClass.__members__))
                else:
                    data_class = DataClass[class_name]
            default = raw.get("default_value")
            if input_type == "INTEGER" and isinstance(default, float) and default.is_integer():
                default = int(default)  # a proto Value holds every number as a double
            definition = InputDef(
                name=name,
                type=input_type,
                required=bool(raw.get("required", False)),
                default=default,
                description=str(raw.get("description", "")),
                data_class=data_class,
            )
            if definition.default is not None and not definition.accepts(definition.default):
                violations.add(f"{path}.default_value", f"does not match type {input_type}")
            inputs.append(definition)
        return inputs

    def _types(self, inputs: list[InputDef], raw_steps: list[Any]) -> PlanTypes:
        """What each step's output is, as far as descriptors and field paths tell (in document order, so an
        output computed from a later step's is DYN)."""
        types = PlanTypes({item.name: plan_types.INPUT_TYPES[item.type] for item in inputs})
        for raw in raw_steps:
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            method = self._catalog.method(raw["call"]) if isinstance(raw.get("call"), str) else None
            if method is None:
                types.steps[raw["id"]] = plan_types.DYN
                continue
            reply = plan_types.message_type(method.response)
            output = raw.get("output")
            one = types.of(output, reply) if isinstance(output, str) and output else reply
            types.steps[raw["id"]] = ValueType("list", element=one) if raw.get("for_each") is not None else one
        return types

    def _step(
        self,
        raw: Any,
        path: str,
        step_ids: set[str],
        input_names: set[str],
        types: PlanTypes,
        violations: Violations,
    ) -> StepDef | None:
        if not isinstance(raw, dict):
            violations.add(path, "expected a mapping")
            return None
        for key in sorted(set(raw) - STEP_KEYS):
            violations.add(f"{path}.{key}", "unknown field of a step")
        step_id = raw.get("id")
        if not (isinstance(step_id, str) and IDENTIFIER.match(step_id)):
            violations.add(f"{path}.id", "lowercase letters, digits and '_', starting with a letter")
            return None
        path = f"steps[{step_id}]"
        fan_out = raw.get("for_each") is not None
        scope = {"inputs", "steps", "run"} | ({"item", "index"} if fan_out else set())
        others = step_ids - {step_id}
        references: set[str] = set()

        def check(source: Any, field_path: str, variables: set[str], response: ValueType | None = None) -> None:
            references.update(
                self._expression(source, field_path, variables, others, input_names, violations, types, response)
            )

        has_call, has_await = raw.get("call") is not None, raw.get("await") is not None
        if has_call == has_await:
            violations.add(path, "a step has exactly one of `call` and `await`")
            return None
        method: MethodInfo | None = None
        await_key, await_roles = "", ()
        if has_call:
            method = self._method(raw["call"], f"{path}.call", violations)
            request = raw.get("request") or {}
            if not isinstance(request, dict):
                violations.add(f"{path}.request", "expected a mapping (the request in proto JSON form)")
            elif method is not None:
                _check_message(request, method.request, f"{path}.request", violations, types)
                for suffix, source in expressions.template_expressions(request):
                    check(source, f"{path}.request{suffix}", scope)
        else:
            spec = raw["await"] if isinstance(raw["await"], dict) else {}
            if not isinstance(raw["await"], dict):
                violations.add(f"{path}.await", "expected a mapping (key, roles)")
            if raw.get("request") is not None:
                violations.add(f"{path}.request", "an await step sends no request")
            await_key = spec.get("key", "") or ""
            if await_key:
                check(await_key, f"{path}.await.key", scope)
            await_roles = tuple(spec.get("roles") or ())
            for key in sorted(set(spec) - {"key", "roles"}):
                violations.add(f"{path}.await.{key}", "unknown field of an await")
        depends_on = raw.get("depends_on") or []
        if not isinstance(depends_on, list):
            violations.add(f"{path}.depends_on", "expected a list of step ids")
            depends_on = []
        for index, dependency in enumerate(depends_on):
            if dependency not in others:
                violations.add(f"{path}.depends_on[{index}]", f"undefined step {dependency!r}")
        when = raw.get("when") or ""
        if when:
            check(when, f"{path}.when", scope)
        items = ""
        concurrency: object = 4  # as written, until checked
        if fan_out:
            spec = raw["for_each"] if isinstance(raw["for_each"], dict) else {}
            items = spec.get("items") or ""
            if not items:
                violations.add(f"{path}.for_each.items", "a CEL expression giving the list to iterate")
            else:
                check(items, f"{path}.for_each.items", {"inputs", "steps", "run"})
            concurrency = spec.get("concurrency") or 4
            violations.check(
                isinstance(concurrency, int) and 1 <= concurrency <= 64, f"{path}.for_each.concurrency", "1 to 64"
            )
        output = raw.get("output") or ""
        if output:
            reply = plan_types.message_type(method.response) if method is not None else plan_types.DYN
            check(output, f"{path}.output", scope | {"response"}, reply)
        retry = self._retry(raw.get("retry"), f"{path}.retry", violations)
        timeout = _duration(raw["timeout"], f"{path}.timeout", violations) if raw.get("timeout") else None
        redact = self._redact(raw.get("redact"), f"{path}.redact", violations) if raw.get("redact") else None
        if redact is not None and has_await:
            violations.add(f"{path}.redact", "only call steps send data to redact")
        return StepDef(
            id=step_id,
            call=method.full_name if method else (raw["call"] if has_call else None),
            await_key=await_key,
            await_roles=await_roles,
            request=raw.get("request") or {} if has_call else {},
            depends_on=tuple(sorted(set(d for d in depends_on if d in others) | (references & others))),
            when=when,
            for_each_items=items,
            for_each_concurrency=concurrency if isinstance(concurrency, int) else 4,
            output=output,
            retry=retry,
            timeout=timeout,
            redact=redact,
        )

    def _method(self, name: Any, path: str, violations: Violations) -> MethodInfo | None:
        if not isinstance(name, str) or "/" not in name:
            violations.add(path, "expected 'package.Service/Method'")
            return None
        method = self._catalog.method(name)
        if method is None:
            violations.add(path, f"unknown method {name!r}: not a method of a registered capability")
            return None
        if not method.unary:
            violations.add(path, f"{name} is a streaming method; plans call unary methods")
            return None
        return method

    def _expression(
        self,
        source: Any,
        path: str,
        variables: set[str],
        step_ids: set[str],
        input_names: set[str],
        violations: Violations,
        types: PlanTypes,
        response: ValueType | None = None,
    ) -> set[str]:
        if not isinstance(source, str) or not source.strip():
            violations.add(path, "expected a CEL expression")
            return set()
        try:
            parsed = expressions.parse(source)
        except expressions.ExpressionError as error:
            violations.add(path, f"invalid CEL: {error}")
            return set()
        for unknown in sorted(parsed.variables - variables):
            violations.add(path, f"unknown variable {unknown!r} (available: {', '.join(sorted(variables))})")
        for step in sorted(parsed.steps - step_ids):
            violations.add(path, f"refers to undefined step {step!r}")
        for name in sorted(parsed.inputs - input_names):
            violations.add(path, f"refers to undefined input {name!r}")
        for problem in types.problems(source, response):
            violations.add(path, problem)
        return set(parsed.steps & step_ids)

    def _retry(self, raw: Any, path: str, violations: Violations) -> RetryPolicy:
        if raw is None:
            return RetryPolicy()
        if not isinstance(raw, dict):
            violations.add(path, "expected a mapping")
            return RetryPolicy()
        for key in sorted(set(raw) - {"max_attempts", "initial_backoff", "max_backoff", "multiplier", "codes"}):
            violations.add(f"{path}.{key}", "unknown field of a retry policy")
        attempts = raw.get("max_attempts", 3)
        violations.check(isinstance(attempts, int) and 1 <= attempts <= 10, f"{path}.max_attempts", "1 to 10")
        initial = (
            _duration(raw["initial_backoff"], f"{path}.initial_backoff", violations)
            if "initial_backoff" in raw
            else 1.0
        )
        longest = _duration(raw["max_backoff"], f"{path}.max_backoff", violations) if "max_backoff" in raw else 30.0
        multiplier = raw.get("multiplier", 2.0)
        violations.check(
            isinstance(multiplier, (int, float)) and 1.0 <= multiplier <= 10.0, f"{path}.multiplier", "1.0 to 10.0"
        )
        codes = []
        for index, code in enumerate(raw.get("codes") or DEFAULT_RETRY_CODES):
            name = _enum_name(code, "", STATUS_CODES)
            if name is None:
                violations.add(f"{path}.codes[{index}]", f"unknown status code {code!r}")
            elif name in NEVER_RETRIED:
                violations.add(f"{path}.codes[{index}]", f"{name} is never retried")
            else:
                codes.append(name)
        return RetryPolicy(
            max_attempts=attempts if isinstance(attempts, int) else 3,
            initial_backoff=initial or 1.0,
            max_backoff=longest or 30.0,
            multiplier=float(multiplier) if isinstance(multiplier, (int, float)) else 2.0,
            codes=frozenset(codes),
        )

    def _redact(self, raw: Any, path: str, violations: Violations) -> RedactPolicy:
        if raw is True:
            return RedactPolicy()
        if not isinstance(raw, dict):
            violations.add(path, "expected a mapping (fields, kinds, rehydrate)")
            return RedactPolicy()
        for key in sorted(set(raw) - {"fields", "kinds", "rehydrate"}):
            violations.add(f"{path}.{key}", "unknown field of a redaction")
        kinds = []
        for index, kind in enumerate(raw.get("kinds") or PII_KINDS):
            name = _enum_name(kind, "PII_KIND_", PII_KINDS)
            if name is None:
                violations.add(f"{path}.kinds[{index}]", "one of " + ", ".join(PII_KINDS))
            else:
                kinds.append(name)
        fields = raw.get("fields") or []
        violations.check(
            isinstance(fields, list) and all(isinstance(item, str) for item in fields),
            f"{path}.fields",
            "expected dotted request field paths",
        )
        return RedactPolicy(
            fields=tuple(fields) if isinstance(fields, list) else (),
            kinds=frozenset(kinds),
            rehydrate=bool(raw.get("rehydrate", False)),
        )

    def _check_acyclic(self, steps: list[StepDef], violations: Violations) -> None:
        remaining = {step.id: set(step.depends_on) for step in steps}
        while remaining:
            ready = [step_id for step_id, deps in remaining.items() if not deps & remaining.keys()]
            if not ready:
                cycle = sorted(remaining)
                violations.add(f"steps[{cycle[0]}].depends_on", "dependency cycle among " + ", ".join(cycle))
                return
            for step_id in ready:
                del remaining[step_id]


def _check_message(
    value: dict[str, Any], descriptor: Descriptor, path: str, violations: Violations, types: PlanTypes
) -> None:
    fields = {**{f.json_name: f for f in descriptor.fields}, **{f.name: f for f in descriptor.fields}}
    for key, item in value.items():
        field_descriptor = fields.get(key)
        if field_descriptor is None:
            violations.add(f"{path}.{key}", f"unknown field of {descriptor.full_name}")
            continue
        field_path = f"{path}.{key}"
        if (
            isinstance(item, str)
            and "${" in item
            and _check_template(item, field_descriptor, field_path, violations, types)
        ):
            continue  # a whole expression: typed here as far as known, otherwise at run time
        if _is_map(field_descriptor):
            if not isinstance(item, dict):
                violations.add(field_path, "expected a mapping")
                continue
            value_field = _map_value_field(field_descriptor)
            for map_key, map_value in item.items():
                _check_single(map_value, value_field, f"{field_path}.{map_key}", violations, types)
        elif field_descriptor.is_repeated:
            if not isinstance(item, list):
                violations.add(field_path, "expected a list")
                continue
            for index, element in enumerate(item):
                _check_single(element, field_descriptor, f"{field_path}[{index}]", violations, types, element=True)
        else:
            _check_single(item, field_descriptor, field_path, violations, types)


def _is_map(field_descriptor: FieldDescriptor) -> bool:
    message = field_descriptor.message_type
    return message is not None and message.GetOptions().map_entry


def _map_value_field(map_field: FieldDescriptor) -> FieldDescriptor:
    entry = map_field.message_type
    assert entry is not None, "a map field's entries are messages"
    return entry.fields_by_name["value"]


def _check_template(
    text: str,
    field_descriptor: FieldDescriptor,
    path: str,
    violations: Violations,
    types: PlanTypes,
    *,
    element: bool = False,
) -> bool:
    """Checks the expressions of a template string against the field it fills; True when the string is one
    whole expression (its value, of any type, fills the field)."""
    try:
        sources = plan_types.template_sources(text)
    except expressions.ExpressionError:
        return False  # reported with the expression checks
    for whole, source in sources:
        value = types.of(source)
        problem = (
            plan_types.mismatch(value, field_descriptor, element=element)
            if whole
            else plan_types.interpolation_problem(value)
        )
        if problem:
            violations.add(path, f"${{{source}}} is {problem}")
    return len(sources) == 1 and sources[0][0]


def _check_single(
    value: Any,
    field_descriptor: FieldDescriptor,
    path: str,
    violations: Violations,
    types: PlanTypes,
    *,
    element: bool = False,
) -> None:
    if (
        isinstance(value, str)
        and "${" in value
        and _check_template(value, field_descriptor, path, violations, types, element=element)
    ):
        return
    kind = field_descriptor.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        message = field_descriptor.message_type
        assert message is not None, "every message field has its message type"
        if message.full_name in _OPAQUE_MESSAGES:
            return
        if message.full_name.startswith("google.protobuf.") and message.full_name.endswith("Value"):
            return  # wrappers take their scalar
        if not isinstance(value, dict):
            violations.add(path, f"expected a {message.full_name} object")
            return
        _check_message(value, message, path, violations, types)
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum = field_descriptor.enum_type
        assert enum is not None, "every enum field has its enum type"
        names = {item.name for item in enum.values}
        if not (isinstance(value, str) and value in names) and not (
            isinstance(value, int) and not isinstance(value, bool)
        ):
            violations.add(path, f"expected a {enum.full_name} name")
    elif kind == FieldDescriptor.TYPE_BOOL:
        violations.check(isinstance(value, bool), path, "expected a boolean")
    elif kind in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        violations.check(isinstance(value, str), path, "expected a string")
    elif kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        violations.check(isinstance(value, (int, float)) and not isinstance(value, bool), path, "expected a number")
    else:
        integral = isinstance(value, int) and not isinstance(value, bool)
        violations.check(
            integral or (isinstance(value, str) and value.lstrip("-").isdigit()), path, "expected an integer"
        )


def _canonical(content: dict[str, Any], plan: PlanDef) -> dict[str, Any]:
    """The plan in proto JSON form with normalised enums and durations; defaults are omitted."""
    spec: dict[str, Any] = {"name": plan.name}
    if content.get("description"):
        spec["description"] = content["description"]
    if plan.inputs:
        spec["inputs"] = []
        for item in plan.inputs:
            entry: dict[str, Any] = {"name": item.name, "type": f"INPUT_TYPE_{item.type}"}
            if item.required:
                entry["required"] = True
            if item.default is not None:
                entry["default_value"] = item.default
            if item.description:
                entry["description"] = item.description
            if item.data_class is not None:
                entry["data_class"] = f"DATA_CLASS_{item.data_class.name}"
            spec["inputs"].append(entry)
    spec["steps"] = []
    raw_steps = {raw["id"]: raw for raw in content["steps"]}
    for step in plan.steps:
        raw = raw_steps[step.id]
        entry = {"id": step.id}
        if raw.get("description"):
            entry["description"] = raw["description"]
        if step.call:
            entry["call"] = step.call
            if step.request:
                entry["request"] = step.request
        else:
            entry["await"] = {
                key: value for key, value in (("key", step.await_key), ("roles", list(step.await_roles))) if value
            }
        explicit = raw.get("depends_on") or []
        if explicit:
            entry["depends_on"] = list(explicit)
        if step.when:
            entry["when"] = step.when
        if step.for_each_items:
            entry["for_each"] = {"items": step.for_each_items, "concurrency": step.for_each_concurrency}
        if step.output:
            entry["output"] = step.output
        if raw.get("retry") is not None:
            retry = step.retry
            entry["retry"] = {
                "max_attempts": retry.max_attempts,
                "initial_backoff": _format_duration(retry.initial_backoff),
                "max_backoff": _format_duration(retry.max_backoff),
                "multiplier": retry.multiplier,
                "codes": sorted(retry.codes),
            }
        if step.timeout is not None:
            entry["timeout"] = _format_duration(step.timeout)
        if step.redact is not None:
            redact: dict[str, Any] = {"kinds": [f"PII_KIND_{kind}" for kind in sorted(step.redact.kinds)]}
            if step.redact.fields:
                redact["fields"] = list(step.redact.fields)
            if step.redact.rehydrate:
                redact["rehydrate"] = True
            entry["redact"] = redact
        spec["steps"].append(entry)
    if plan.outputs:
        spec["outputs"] = dict(sorted(plan.outputs.items()))
    if content.get("deadline") is not None:
        spec["deadline"] = _format_duration(plan.deadline_seconds)
    if plan.purposes:
        spec["purposes"] = sorted(plan.purposes)
    return spec
