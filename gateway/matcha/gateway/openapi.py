"""OpenAPI 3.1 from the same descriptors the gateway routes by, with the protos' comments as descriptions.

Schemas follow the proto3 JSON mapping the gateway speaks: camelCase property names, enums by
name, 64-bit integers as strings, well-known types in their JSON form.
"""

from importlib import metadata
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from matcha.gateway.catalog import Catalog, Route
from matcha.gateway.proto_docs import ProtoComments

STATUS_SCHEMA = "google.rpc.Status"
_INT32_RANGE = {"minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32_RANGE = {"minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
_FLOAT = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", **_UINT32_RANGE},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "uint32", **_UINT32_RANGE},
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_FLOAT: _FLOAT,
    FieldDescriptor.TYPE_DOUBLE: _FLOAT,
}
_WRAPPERS = {
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    **{name: _SCALARS[scalar] for name, scalar in _WRAPPERS.items()},
}


def _ref(full_name: str) -> dict:
    return {"$ref": f"#/components/schemas/{full_name}"}


class _SchemaBuilder:
    def __init__(self, comments: ProtoComments) -> None:
        self.comments = comments
        self.schemas: dict[str, dict] = {}

    def message(self, descriptor: Descriptor, excluded: frozenset[str] = frozenset()) -> dict:
        """The schema of a message; a reference unless fields are excluded (a body without its path fields)."""
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if not excluded:
            if descriptor.full_name not in self.schemas:
                self.schemas[descriptor.full_name] = {}  # placeholder: recursive messages refer to themselves
                self.schemas[descriptor.full_name] = self._object(descriptor, excluded)
            return _ref(descriptor.full_name)
        return self._object(descriptor, excluded)

    def _object(self, descriptor: Descriptor, excluded: frozenset[str]) -> dict:
        properties = {field.json_name: self.field(field) for field in descriptor.fields if field.name not in excluded}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if description := self.comments.of(descriptor.full_name):
            schema["description"] = description
        return schema

    def enum(self, descriptor: EnumDescriptor) -> dict:
        if descriptor.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        if descriptor.full_name not in self.schemas:
            schema = {"type": "string", "enum": [value.name for value in descriptor.values]}
            described = [
                f"{value.name}: {self.comments.of(f'{descriptor.full_name}.{value.name}')}"
                for value in descriptor.values
                if self.comments.of(f"{descriptor.full_name}.{value.name}")
            ]
            description = " ".join([self.comments.of(descriptor.full_name), *described]).strip()
            if description:
                schema["description"] = description
            self.schemas[descriptor.full_name] = schema
        return _ref(descriptor.full_name)

    def single(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            schema = {"type": "object", "additionalProperties": self.single(value)}
        elif field.is_repeated:
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        if description := self.comments.of(field.full_name):
            schema = {**schema, "description": description}
        return schema


def _query_parameters(route: Route, builder: _SchemaBuilder, bound: set[str]) -> list[dict]:
    """Top-level scalar, enum and scalar well-known fields not bound by the path or the body."""
    if route.body == "*":
        return []
    parameters = []
    for field in route.method.input_type.fields:
        if field.name in bound or field.name == route.body:
            continue
        if field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        schema = builder.field(field)
        description = schema.pop("description", "")
        parameter: dict[str, Any] = {"name": field.json_name, "in": "query", "schema": schema}
        if field.is_repeated:
            parameter.update(style="form", explode=True)
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _server_sent_event(reply_schema: dict) -> dict:
    """One event of a stream (Open API 3.1 has an event stream's `schema` describe each event): `data` is a
    message as JSON, or a google.rpc.Status in an `error` event."""
    return {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["message", "error"]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"anyOf": [reply_schema, _ref(STATUS_SCHEMA)]},
            },
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["data"],
    }


def _operation(route: Route, builder: _SchemaBuilder) -> dict:
    method = route.method
    bound = {variable.split(".")[0] for variable in route.template.variables}
    parameters = []
    for variable in route.template.variables:
        *hops, last = variable.split(".")
        descriptor = method.input_type
        for name in hops:
            hop = descriptor.fields_by_name[name].message_type
            # The catalog admitted only singular message fields on the way.
            assert hop is not None
            descriptor = hop
        schema = builder.field(descriptor.fields_by_name[last])
        description = schema.pop("description", "")
        parameter = {"name": variable, "in": "path", "required": True, "schema": schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    parameters.extend(_query_parameters(route, builder, bound))
    operation: dict = {
        "operationId": route.operation_id,
        "tags": [method.containing_service.name],
        "summary": f"{method.containing_service.name}.{method.name}",
    }
    if description := builder.comments.of(method.full_name):
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if route.body or route.streams_requests:
        if route.body == "*":
            body_schema = builder.message(method.input_type, frozenset(bound))
        elif route.body:
            body_schema = builder.field(method.input_type.fields_by_name[route.body])
        else:
            body_schema = {"type": "object"}
        content = {"application/json": {"schema": body_schema}}
        if route.streams_requests:
            content = {
                "application/json": {"schema": {"type": "array", "items": body_schema}},
                "application/x-ndjson": {"schema": body_schema},
            }
        operation["requestBody"] = {"required": route.body == "*" and route.streams_requests, "content": content}
    if route.response_body:
        reply_schema = builder.field(method.output_type.fields_by_name[route.response_body])
    else:
        reply_schema = builder.message(method.output_type)
    if route.streams_responses:
        success = {
            "description": "A stream: Server-Sent Events whose `data` is one message each (an `error` event carries "
            "a google.rpc.Status), or with `Accept: application/x-ndjson` one JSON line per message, "
            '`{"result": message}` or `{"error": status}`.',
            "content": {
                "text/event-stream": {"schema": _server_sent_event(reply_schema)},
                "application/x-ndjson": {
                    "schema": {
                        "type": "object",
                        "properties": {"result": reply_schema, "error": _ref(STATUS_SCHEMA)},
                    }
                },
            },
        }
    else:
        success = {"description": "OK", "content": {"application/json": {"schema": reply_schema}}}
    operation["responses"] = {
        "200": success,
        "default": {
            "description": "An error: the gRPC status as google.rpc.Status, with its details "
            "(field violations, error info, retry info)",
            "content": {"application/json": {"schema": _ref(STATUS_SCHEMA)}},
        },
    }
    return operation


def _status_schema() -> dict:
    return {
        "type": "object",
        "description": "The gRPC status of a failed call (google.rpc.Status).",
        "properties": {
            "code": {"type": "integer", "description": "gRPC status code (google.rpc.Code)."},
            "message": {"type": "string", "description": "Developer-facing message, in English."},
            "details": {
                "type": "array",
                "description": "google.rpc.BadRequest, ErrorInfo, RetryInfo, each with its `@type`.",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "required": ["@type"],
                    "additionalProperties": True,
                },
            },
        },
        "required": ["code", "message", "details"],
    }


def build_openapi(catalog: Catalog, comments: ProtoComments) -> dict:
    builder = _SchemaBuilder(comments)
    paths: dict[str, dict] = {}
    for route in sorted(catalog.routes, key=lambda route: (route.template.openapi_path, route.http_method)):
        paths.setdefault(route.template.openapi_path, {})[route.http_method.lower()] = _operation(route, builder)
    schemas = dict(sorted(builder.schemas.items()))
    schemas[STATUS_SCHEMA] = _status_schema()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Matcha",
            "version": metadata.version("matcha"),
            "description": "HTTP/JSON access to the Matcha services, transcoded to gRPC by the gateway. "
            "Every call needs a bearer token; `X-Matcha-Purpose` and `X-Matcha-Data-Class` carry the "
            "purpose of processing and the class of the payload.",
        },
        "tags": [
            {"name": service.name, "description": comments.of(service.full_name)}
            for _name, service in sorted(catalog.services.items())
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }
