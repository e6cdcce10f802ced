"""The shipped plans, registered for the local tenant when the stack starts."""

import asyncio

from matcha.conductor.v1 import conductor_pb2_grpc
from matcha.plans import InstalledPlan, install_plans
from matcha.runtime.auth import TokenIssuer
from matcha.runtime.client import open_channel
from matcha.runtime.governance import DataClass

INSTALLER_SUBJECT = "plan-installer"


def install_local_plans(conductor_address: str, issuer: TokenIssuer, tenant: str) -> list[InstalledPlan]:
    """Registers every shipped plan for `tenant` as an author of it; unchanged plans keep their version."""
    token = issuer.mint(subject=INSTALLER_SUBJECT, tenant=tenant, roles=["author"], ttl_seconds=300)

    async def install() -> list[InstalledPlan]:
        async with open_channel(
            conductor_address, token=token, purpose="campaign", data_class=DataClass.INTERNAL
        ) as channel:
            return await install_plans(conductor_pb2_grpc.ConductorServiceStub(channel))

    return asyncio.run(install())
