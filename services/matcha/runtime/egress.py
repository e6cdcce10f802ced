"""Outbound HTTP to addresses a tenant chose (feeds, webhooks): only to public addresses, or to networks the
operator allowed.

Without it, whoever may create a listening watch could make a service inside the cluster fetch or POST to
the cluster's own addresses (other services, the cloud's metadata endpoint, an admin page on loopback) and
learn from the answers. Every connection is checked, redirects included, on the address it actually
connects to: the host is resolved once, checked, and the connection made to that address (with the name
kept for the Host header and TLS), so a name that resolves differently a moment later changes nothing.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefused(httpx.ConnectError):
    """The destination is not allowed: raised before any packet leaves for it."""


@dataclass(frozen=True)
class EgressPolicy:
    # Networks allowed although not public (an on-premises feed server, say).
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, networks: str) -> "EgressPolicy":
        """From a comma-separated list of addresses or CIDR networks; a malformed entry raises ValueError."""
        return cls(
            tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in networks.split(",") if entry.strip())
        )

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_global or any(address in network for network in self.allowed_networks)

    def refusal(self, url: str) -> str | None:
        """Why `url` is refused when its host is a literal address (or `localhost`); None when it may be tried.

        Names are resolved only when connecting: a check at creation would give no lasting guarantee."""
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return "localhost is not an allowed destination"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        return None if self.permits(address) else f"{address} is not a public address nor in an allowed network"

    async def resolve(self, host: str, port: int) -> Address:
        """The first address of `host` this policy permits; EgressRefused when none is."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpx.ConnectError(f"cannot resolve {host}: {error.strerror}") from None
        # An IPv6 address may end with its scope ("%eth0").
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        for address in addresses:
            if self.permits(address):
                return address
        raise EgressRefused(f"{host} resolves to no public address nor one in an allowed network")


class GuardedTransport(httpx.AsyncBaseTransport):
    """Connects only where the policy allows, to the address it checked."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        address = await self._policy.resolve(host, request.url.port or (443 if request.url.scheme == "https" else 80))
        # The Host header already names the host; TLS must verify the certificate for the name, not the address.
        request.url = request.url.copy_with(host=str(address))
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_client(policy: EgressPolicy, *, timeout_seconds: float) -> httpx.AsyncClient:
    """An HTTP client for tenant-chosen destinations. Proxy variables are ignored: a proxy would connect on the
    client's behalf, past the check."""
    return httpx.AsyncClient(transport=GuardedTransport(policy), timeout=timeout_seconds, trust_env=False)
