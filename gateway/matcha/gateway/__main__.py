"""`python -m matcha.gateway`: the HTTP gateway process (port 8080 by default)."""

import signal
import socket
import sys

import uvicorn

from matcha.gateway.app import build_gateway
from matcha.gateway.settings import GatewaySettings
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.logs import configure_logging
from matcha.runtime.settings import load_settings
from matcha.runtime.tracing import create_tracer_provider


def listening_socket(host: str, port: int) -> socket.socket:
    """The gateway's socket. An IPv6 wildcard also takes IPv4 connections, as gRPC's `[::]` does
    (uvicorn binding `::` itself would make the socket IPv6-only, out of reach of IPv4 probes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle off only on sockets that say they are TCP (40 ms stalls otherwise).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, port))
    return sock


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level)
    if not settings.public_key_path.exists():
        raise SystemExit(
            f"no token verification key at {settings.public_key_path}: run `matcha up` once, "
            "or set MATCHA_AUTH_PUBLIC_KEY_FILE"
        )
    tracer_provider = create_tracer_provider("gateway")
    try:
        app = build_gateway(
            settings,
            tracer_provider,
            TokenVerifier.from_file(
                settings.public_key_path, max_lifetime_seconds=settings.auth_max_token_lifetime_seconds
            ),
        )
    except ValueError as error:
        raise SystemExit(f"invalid configuration:\n  {error}") from None
    host, port = settings.host_and_port
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="asyncio",
        http="httptools",
        lifespan="on",
        log_config=None,  # the JSON logs of configure_logging
        access_log=False,  # the gateway logs each request itself, with its trace id
        # uvicorn waits with asyncio.wait_for, which takes fractions of a second too; its annotation says int.
        timeout_graceful_shutdown=settings.grace_period_seconds,  # type: ignore[arg-type]
    )
    # uvicorn drains on SIGTERM, then re-raises it to the previous handler: after a drain, that is a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(config).run(sockets=[listening_socket(host, port)])
    finally:
        tracer_provider.shutdown()


if __name__ == "__main__":
    main()
