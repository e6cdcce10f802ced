"""Assembles the conductor from its settings."""

import importlib

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.sdk.trace import TracerProvider

from matcha.conductor.capabilities import ReportedClearances
from matcha.conductor.catalog import CapabilityCatalog
from matcha.conductor.core import ConductorCore
from matcha.conductor.engine import RunEngine
from matcha.conductor.expressions import ExpressionBudget, ExpressionEvaluator
from matcha.conductor.invoker import DynamicInvoker
from matcha.conductor.keys import ConductorKeys, load_or_create_secret, load_workload_issuer
from matcha.conductor.plans import DEFAULT_CALL_TIMEOUT_SECONDS, PlanDef, PlanValidator
from matcha.conductor.servicer import ConductorServicer
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.store import ConductorStore
from matcha.conductor.trigger_follower import AlertTriggerFollower
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.mesh import CAPABILITIES
from matcha.runtime.access import AccessLedgerReader, access_key
from matcha.runtime.channels import ChannelPool
from matcha.runtime.database import configured_database, load_migrations
from matcha.runtime.server import ServiceDefinition

SERVICE_NAME = conductor_pb2.DESCRIPTOR.services_by_name["ConductorService"].full_name


def capability_services() -> list[ServiceDescriptor]:
    """Every capability contract plans may call: the mesh's, from their generated modules."""
    return [
        importlib.import_module(spec.contract_module).DESCRIPTOR.services_by_name[spec.grpc_service.rsplit(".", 1)[1]]
        for spec in CAPABILITIES
        if spec.grpc_service
    ]


def build_conductor_service(
    settings: ConductorSettings, tracer_provider: TracerProvider | None = None
) -> ServiceDefinition:
    tracer_provider = tracer_provider or TracerProvider()
    keys = ConductorKeys(load_or_create_secret(settings.secret_path, create=settings.database_is_local))
    workload = load_workload_issuer(
        settings.workload_key_path,
        create=settings.database_is_local,
        ttl_seconds=settings.conductor_workload_token_seconds,
    )
    database = configured_database(settings)
    store = ConductorStore(database, keys.audit_key)
    clearances = ReportedClearances(
        settings.conductor_endpoints,
        settings.target_overrides,
        ChannelPool(transport=settings.transport),
        refresh_seconds=settings.conductor_clearance_refresh_seconds,
    )
    catalog = CapabilityCatalog(capability_services(), settings.conductor_endpoints, clearances)
    invoker = DynamicInvoker(settings.conductor_endpoints, tracer_provider, settings.transport)
    validator = PlanValidator(catalog)

    async def load_plan(tenant: str, name: str, version: int) -> PlanDef:
        row = await store.get_plan(tenant, name, version)
        assert row is not None, "a run's plan version was registered before it, and plans are never deleted"
        return validator.validate_stored(row.spec, row.sha256)

    evaluator = ExpressionEvaluator(
        ExpressionBudget(
            max_cost=settings.conductor_expression_max_cost,
            timeout_seconds=settings.conductor_expression_timeout_seconds,
        )
    )
    engine = RunEngine(
        store,
        catalog,
        invoker,
        keys,
        load_plan,
        tracer_provider.get_tracer("matcha.conductor"),
        workload=workload,
        lease_seconds=settings.conductor_lease_seconds,
        poll_seconds=settings.conductor_poll_seconds,
        max_active_runs=settings.conductor_max_active_runs,
        default_timeout=DEFAULT_CALL_TIMEOUT_SECONDS,
        evaluator=evaluator,
        max_fan_out_items=settings.conductor_max_fan_out_items,
    )
    core = ConductorCore(store, catalog, engine, keys, AccessLedgerReader(database, access_key(settings)))
    follower = AlertTriggerFollower(
        core,
        store,
        catalog,
        invoker,
        keys,
        workload,
        tracer_provider.get_tracer("matcha.conductor"),
        lease_seconds=settings.conductor_lease_seconds,
    )

    def register(server: grpc.aio.Server) -> None:
        conductor_pb2_grpc.add_ConductorServiceServicer_to_server(ConductorServicer(core), server)

    async def on_start() -> None:
        await database.connect(load_migrations("conductor", "matcha.conductor.migrations"))
        await store.listen()
        # Targets already up report now; the others before the first hop to them.
        await clearances.refresh_all()
        await engine.start()
        await follower.start()

    async def on_stop() -> None:
        await follower.stop()
        await engine.stop()
        evaluator.close()
        await invoker.close()
        await clearances.close()
        await store.stop_listening()
        await database.close()

    return ServiceDefinition("conductor", [SERVICE_NAME], register, on_start, on_stop)
