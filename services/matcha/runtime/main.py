"""The generic composition root of a service process: settings in, server running."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from opentelemetry.sdk.trace import TracerProvider

from matcha.runtime.access import configured_access_ledger
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.channels import TransportError
from matcha.runtime.logs import configure_logging
from matcha.runtime.server import MatchaServer, ServiceDefinition, serve_until_signalled
from matcha.runtime.settings import ServiceSettings, load_settings
from matcha.runtime.tracing import create_tracer_provider

Settings = TypeVar("Settings", bound=ServiceSettings)
DefinitionFactory = Callable[[Settings, TracerProvider], ServiceDefinition]


def configured_verifier(settings: ServiceSettings) -> TokenVerifier:
    """User tokens by the user keys; the conductor's workload tokens by its workload keys. A workload key file
    named explicitly must exist; the state dir's default may appear later (the conductor creates it)."""
    if not settings.public_key_path.exists():
        raise SystemExit(
            f"no token verification key at {settings.public_key_path}: run `matcha up` once, "
            "or set MATCHA_AUTH_PUBLIC_KEY_FILE"
        )
    workload = settings.workload_public_key_path
    if settings.auth_workload_public_key_file is not None and not workload.exists():
        raise SystemExit(f"no workload token key at {workload}: check MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE")
    try:
        return TokenVerifier.from_file(
            settings.public_key_path,
            max_lifetime_seconds=settings.auth_max_token_lifetime_seconds,
            workload_path=workload,
            max_workload_lifetime_seconds=settings.auth_workload_max_token_lifetime_seconds,
        )
    except ValueError as error:
        raise SystemExit(f"token verification keys: {error}") from None


def run_service(name: str, settings_type: type[Settings], build: DefinitionFactory[Settings]) -> None:
    """Reads settings once, builds the service, serves until SIGTERM/SIGINT."""
    settings = load_settings(settings_type)
    configure_logging(name, settings.log_level)
    tracer_provider = create_tracer_provider(name)
    try:
        transport = settings.transport
    except TransportError as error:
        raise SystemExit(str(error)) from None
    server = MatchaServer(
        build(settings, tracer_provider),
        listen_address=settings.listen_address,
        verifier=configured_verifier(settings),
        clearance=settings.service_clearance,
        tracer_provider=tracer_provider,
        access_ledger=configured_access_ledger(settings),
        grace_period_seconds=settings.grace_period_seconds,
        drain_seconds=settings.shutdown_drain_seconds,
        tenant_limits=settings.tenant_limits,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        transport=transport,
        health_listen_address=settings.health_listen_address,
    )
    try:
        asyncio.run(serve_until_signalled(server))
    finally:
        tracer_provider.shutdown()
