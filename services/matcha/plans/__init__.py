"""The plans shipped with Matcha: YAML documents packaged with the code, registered per tenant.

`matcha plan install` registers them for a tenant and `matcha up` for the local one. Registering is
idempotent: a plan whose content is unchanged keeps its version (`created` is false).
"""

import importlib.resources
from dataclasses import dataclass

from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc


@dataclass(frozen=True)
class ShippedPlan:
    name: str
    document: str


@dataclass(frozen=True)
class InstalledPlan:
    name: str
    version: int
    created: bool


def shipped_plans() -> list[ShippedPlan]:
    """Every plan document of this package, by file name."""
    files = sorted(
        (entry for entry in importlib.resources.files(__name__).iterdir() if entry.name.endswith(".yaml")),
        key=lambda entry: entry.name,
    )
    return [ShippedPlan(entry.name.removesuffix(".yaml"), entry.read_text(encoding="utf-8")) for entry in files]


async def install_plans(stub: conductor_pb2_grpc.ConductorServiceStub) -> list[InstalledPlan]:
    """Registers every shipped plan for the tenant of the stub's token (role `author`)."""
    installed = []
    for plan in shipped_plans():
        reply = await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=plan.document))
        installed.append(InstalledPlan(reply.plan.name, reply.plan.version, reply.created))
    return installed
