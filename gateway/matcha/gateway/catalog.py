"""The routes of every `google.api.http` annotation found in the generated `matcha.<area>.v1` modules.

Nothing here is written per RPC: annotating an RPC in its proto and regenerating adds its route.
"""

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from matcha.gateway.templates import PathTemplate, TemplateError, parse_template

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Route:
    http_method: str
    template: PathTemplate
    # "" (no body: every unbound field comes from the query), "*" (the whole request) or a field name.
    body: str
    # "" (the whole response) or the response field to return.
    response_body: str
    method: MethodDescriptor

    @property
    def service_name(self) -> str:
        return self.method.containing_service.full_name

    @property
    def grpc_path(self) -> str:
        return f"/{self.service_name}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        return f"{self.method.containing_service.name}_{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    @property
    def streams_requests(self) -> bool:
        return self.method.client_streaming

    @property
    def streams_responses(self) -> bool:
        return self.method.server_streaming


class RouteNotFound(LookupError):
    pass


class MethodNotAllowed(LookupError):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


def generated_proto_modules(namespace: str = "matcha") -> list[ModuleType]:
    """Every `<namespace>.<area>.v1.*_pb2` module on the path."""
    package = importlib.import_module(namespace)
    # Areas may be namespace packages (no __init__.py), which pkgutil does not list: look at directories.
    areas = sorted({entry.name for root in package.__path__ for entry in Path(root).iterdir() if entry.is_dir()})
    modules = []
    for area in areas:
        versioned = f"{namespace}.{area}.v1"
        if not area.isidentifier() or importlib.util.find_spec(versioned) is None:
            continue
        version_package = importlib.import_module(versioned)
        for module in sorted(pkgutil.iter_modules(version_package.__path__), key=lambda info: info.name):
            if module.name.endswith("_pb2"):
                modules.append(importlib.import_module(f"{versioned}.{module.name}"))
    return modules


def _bindings(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, http_pb2.HttpRule]]:
    for binding in (rule, *rule.additional_bindings):
        pattern = binding.WhichOneof("pattern")
        if pattern in HTTP_METHODS:
            yield pattern.upper(), getattr(binding, pattern), binding
        elif pattern == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding


def check_binding(route: Route) -> None:
    """A template variable must name a singular non-message field, reached through singular messages."""
    for variable in route.template.variables:
        descriptor: Descriptor | None = route.method.input_type
        field: FieldDescriptor | None = None
        for name in variable.split("."):
            field = descriptor.fields_by_name.get(name) if descriptor is not None else None
            if field is None or field.is_repeated:
                raise TemplateError(f"{route.template.template} of {route.grpc_path}: no singular field {variable!r}")
            descriptor = field.message_type
        if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
            raise TemplateError(f"{route.template.template} of {route.grpc_path}: {variable!r} is a message")
    if route.body not in ("", "*") and route.body not in route.method.input_type.fields_by_name:
        raise TemplateError(f"{route.grpc_path}: body {route.body!r} is not a field of the request")


def routes_of_service(service: ServiceDescriptor) -> list[Route]:
    routes = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        for http_method, template, binding in _bindings(options.Extensions[annotations_pb2.http]):
            route = Route(http_method, parse_template(template), binding.body, binding.response_body, method)
            check_binding(route)
            routes.append(route)
    return routes


class Catalog:
    """The routes, most specific first, and the services they belong to."""

    def __init__(self, files: Iterable[FileDescriptor]) -> None:
        routes: list[Route] = []
        services: dict[str, ServiceDescriptor] = {}
        for file in files:
            for service in file.services_by_name.values():
                service_routes = routes_of_service(service)
                if service_routes:
                    services[service.full_name] = service
                    routes.extend(service_routes)
        self.routes = sorted(routes, key=lambda route: route.template.specificity, reverse=True)
        self.services = services

    @classmethod
    def from_generated_modules(cls, namespace: str = "matcha") -> "Catalog":
        return cls(module.DESCRIPTOR for module in generated_proto_modules(namespace))

    def find(self, http_method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            bound = route.template.match(path)
            if bound is None:
                continue
            if route.http_method == http_method:
                return route, bound
            allowed.append(route.http_method)
        if allowed:
            raise MethodNotAllowed(sorted(set(allowed)))
        raise RouteNotFound(path)
