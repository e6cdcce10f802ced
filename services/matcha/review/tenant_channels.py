"""Channels the review service calls other services on, as a workload of each tenant.

Tokens are read from `<tokens_dir>/<tenant>.jwt` on each call, so an operator can add or rotate them while
deliveries wait; a channel is kept per tenant for as long as its token is unchanged.
"""

import re
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.channels import PLAINTEXT, Transport
from matcha.runtime.client import open_channel

SAFE_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class NoServiceToken(Exception):
    """The tenant has no usable token file; `permanent` when its name cannot name one."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class TenantChannels:
    def __init__(
        self,
        address: str,
        tokens_dir: Path,
        *,
        tracer_provider: TracerProvider | None,
        transport: Transport = PLAINTEXT,
    ) -> None:
        self.address = address
        self._tokens_dir = tokens_dir
        self._tracer_provider = tracer_provider
        self._transport = transport
        self._channels: dict[str, tuple[str, grpc.aio.Channel]] = {}

    async def channel(self, tenant: str) -> grpc.aio.Channel:
        if not SAFE_TENANT.match(tenant):
            raise NoServiceToken(f"tenant {tenant!r} cannot name a token file", permanent=True)
        path = self._tokens_dir / f"{tenant}.jwt"
        try:
            token = path.read_text().strip()
        except OSError:
            token = ""
        if not token:
            raise NoServiceToken(f"no service token for tenant {tenant!r} ({path.name})", permanent=False)
        cached = self._channels.get(tenant)
        if cached is not None and cached[0] == token:
            return cached[1]
        if cached is not None:
            await cached[1].close()
        channel = open_channel(
            self.address, token=token, tracer_provider=self._tracer_provider, transport=self._transport
        )
        self._channels[tenant] = (token, channel)
        return channel

    async def drop(self, tenant: str) -> None:
        """Forgets the tenant's channel: a fresh one reconnects at once, where ours would wait out gRPC's
        reconnect backoff."""
        cached = self._channels.pop(tenant, None)
        if cached is not None:
            await cached[1].close()

    async def close(self) -> None:
        for _, channel in self._channels.values():
            await channel.close()
        self._channels.clear()
