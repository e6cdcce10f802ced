"""The capability services plans may call: their descriptors, endpoints and clearances.

Plans are validated and requests built from the descriptors alone, so any capability
whose contract is loaded is callable without a hand-written client. Clearances are the
ones the services report (`capabilities.ReportedClearances`), read at each use.
"""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor

from matcha.runtime.governance import Clearance

ERASE_METHOD = "EraseSubject"
DESCRIBE_METHOD = "DescribeSubject"


@dataclass(frozen=True)
class MethodInfo:
    full_name: str  # "matcha.embedding.v1.EmbeddingService/Search"
    service: str
    name: str
    request: Descriptor
    response: Descriptor
    unary: bool

    @property
    def path(self) -> str:
        return f"/{self.full_name}"

    def request_class(self):
        return message_factory.GetMessageClass(self.request)

    def new_request(self):
        return self.request_class()()

    def response_class(self):
        return message_factory.GetMessageClass(self.response)


class ClearanceSource(Protocol):
    def current(self, service: str) -> Clearance: ...

    async def refresh(self, service: str) -> Clearance: ...


@dataclass(frozen=True)
class Capability:
    service: str
    methods: tuple[MethodInfo, ...]
    endpoint: str | None
    clearance: Clearance


class CapabilityCatalog:
    def __init__(
        self,
        services: Iterable[ServiceDescriptor],
        endpoints: dict[str, str],
        clearances: ClearanceSource,
    ) -> None:
        self._clearances = clearances
        self._capabilities: dict[str, Capability] = {}
        self._methods: dict[str, MethodInfo] = {}
        for service in services:
            methods = tuple(
                MethodInfo(
                    full_name=f"{service.full_name}/{method.name}",
                    service=service.full_name,
                    name=method.name,
                    request=method.input_type,
                    response=method.output_type,
                    unary=not (method.client_streaming or method.server_streaming),
                )
                for method in service.methods
            )
            self._capabilities[service.full_name] = Capability(
                service.full_name, methods, endpoints.get(service.full_name), clearances.current(service.full_name)
            )
            self._methods.update((method.full_name, method) for method in methods)

    def method(self, full_name: str) -> MethodInfo | None:
        return self._methods.get(full_name)

    def capability(self, service: str) -> Capability:
        """The capability with the clearance it reported last (lowered by the operator's override)."""
        return dataclasses.replace(self._capabilities[service], clearance=self._clearances.current(service))

    async def reported(self, service: str) -> Capability:
        """The capability with its clearance asked again first when it has not reported yet or its report is
        stale: what a hop decides on."""
        await self._clearances.refresh(service)
        return self.capability(service)

    def capabilities(self) -> list[Capability]:
        return [self.capability(service) for service in sorted(self._capabilities)]

    def erasers(self) -> list[MethodInfo]:
        """The EraseSubject method of every deployed capability (one with an endpoint) that stores subjects."""
        return self._deployed(ERASE_METHOD)

    def describers(self) -> list[MethodInfo]:
        """The DescribeSubject method of every deployed capability that answers for the subjects it stores."""
        return self._deployed(DESCRIBE_METHOD)

    def _deployed(self, name: str) -> list[MethodInfo]:
        return [
            method
            for capability in self.capabilities()
            if capability.endpoint
            for method in capability.methods
            if method.name == name and method.unary
        ]
