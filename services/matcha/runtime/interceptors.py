"""The one server interceptor: authentication, governance context, access ledger, error mapping.

It wraps every method handler (all four streaming shapes) so that within a call:
the bearer token is verified, the governance context is established and checked
against the service's clearance, the caller's roles against the role table
(`roles`), an idempotency key is bound to its request (`idempotency`: another
request under a used key never reaches the handler), logs and spans carry its
fields, the call is written to the access
ledger (what the handler reported of the records it touched included) before
its reply leaves, and any error leaves as a gRPC status with `google.rpc`
details; never as a stack trace.
"""

import asyncio
import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from matcha.runtime import governance as gov
from matcha.runtime import roles
from matcha.runtime.access import AccessEntry, AccessLedger
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.chain import digest
from matcha.runtime.errors import (
    ERROR_DOMAIN,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    PermissionDenied,
    Unavailable,
)
from matcha.runtime.idempotency import IdempotencyKeys
from matcha.runtime.limits import CONTINUATIONS, TenantLimiter
from matcha.runtime.logs import request_fields
from matcha.runtime.tracing import (
    DATA_CLASS_ATTRIBUTE,
    PURPOSE_ATTRIBUTE,
    SUBJECT_ATTRIBUTE,
    TENANT_ATTRIBUTE,
)

logger = logging.getLogger(__name__)

# Probes and tooling must work without a token; so must the conductor asking a service its clearance (it
# describes the server, never data).
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/matcha.runtime.v1.RuntimeService/",
)


@dataclass
class AccessReport:
    """What a handler says about the records its call read or wrote (see `report_records`)."""

    highest_class: gov.DataClass = gov.DataClass.PUBLIC
    reported: bool = False
    records: int = 0
    subjects: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)
    models: set[tuple[str, str]] = field(default_factory=set)


_current_call: ContextVar[gov.CallContext] = ContextVar("matcha_call_context")
_access_report: ContextVar[AccessReport] = ContextVar("matcha_access_report")


def current_call() -> gov.CallContext:
    """The governance context of the call being served (set by the interceptor)."""
    return _current_call.get()


def report_records(
    classes: Iterable[gov.DataClass] | None = None,
    *,
    subjects: Iterable[str] = (),
    resources: Iterable[str] = (),
    models: Iterable[tuple[str, str]] = (),
) -> None:
    """Reports records the call returned or wrote: their classes raise the class the reply states in
    `x-matcha-derived-class` (PUBLIC when it returns none); their subjects, the resources named
    ("collection:reviews") and the models used go into the call's access-ledger row. Without `classes` (None,
    not an empty list) the reply states no class: the call returns no stored records."""
    report = _access_report.get(None)
    if report is None:
        return
    if classes is not None:
        classes = list(classes)
        report.highest_class = max([report.highest_class, *classes])
        report.reported = True
        report.records += len(classes)
    report.subjects.update(subject for subject in subjects if subject)
    report.resources.update(resources)
    report.models.update(models)


@dataclass
class _ServedCall:
    """One call as the interceptor sees it, from its metadata to its reply."""

    method: str
    request: object | None
    started: datetime
    trace_id: str
    span_id: str
    principal: gov.Principal | None = None
    call: gov.CallContext | None = None
    reply: object | None = None
    report: AccessReport = field(default_factory=AccessReport)
    recorded: bool = False
    # Takes the caller's next token for each message of a request stream after the first (see limits.py).
    pace: Callable[[], Awaitable[None]] | None = None
    _request_sha256: str | None = field(default=None, repr=False)

    def request_digest(self) -> str:
        if self._request_sha256 is None:
            self._request_sha256 = _message_digest(self.request)
        return self._request_sha256


def status_from_error(error: MatchaError) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if error.reason:
        details.append(
            _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=details)


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class GovernanceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        clearance: gov.Clearance,
        access_ledger: AccessLedger | None = None,
        limiter: TenantLimiter | None = None,
    ) -> None:
        self._verifier = verifier
        self._clearance = clearance
        self._ledger = access_ledger
        self._limiter = limiter
        # Bound where accesses are recorded: without a ledger (measuring its cost) keys are not bound either.
        self._idempotency = (
            IdempotencyKeys(access_ledger.database, access_ledger.key) if access_ledger is not None else None
        )
        # Rows of cancelled calls being written (held, so that they are not collected half-way).
        self._background: set[asyncio.Task] = set()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        return _wrap_handler(handler, functools.partial(self._call_scope, method=handler_call_details.method))

    def _establish(self, context: grpc.aio.ServicerContext, served: _ServedCall) -> gov.CallContext:
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        authorization = metadata.get(gov.AUTHORIZATION_HEADER, "")
        principal = served.principal = self._verifier.verify(authorization)
        claimed_tenant = metadata.get(gov.TENANT_HEADER)
        if claimed_tenant is not None and claimed_tenant != principal.tenant:
            raise PermissionDenied(
                "tenant header does not match the token's tenant",
                reason="TENANT_MISMATCH",
                metadata={"token_tenant": principal.tenant, "requested_tenant": claimed_tenant},
            )
        raw_class = metadata.get(gov.DATA_CLASS_HEADER)
        try:
            data_class = gov.DataClass.parse(raw_class) if raw_class else gov.DataClass.PERSONAL
        except InvalidArgument as error:
            violation = FieldViolation(f"metadata.{gov.DATA_CLASS_HEADER}", error.message)
            raise InvalidArgument(error.message, violations=[violation]) from None
        purpose = metadata.get(gov.PURPOSE_HEADER) or gov.DEFAULT_PURPOSE
        if principal.run_id and purpose != principal.bound_purpose:
            raise PermissionDenied(
                "a run's workload token serves the run's purpose only",
                reason="WORKLOAD_PURPOSE_MISMATCH",
                metadata={"run_id": principal.run_id, "purpose": purpose, "allowed": principal.bound_purpose},
            )
        if not roles.is_erasure(served.method, purpose, principal.roles):
            self._clearance.admit(data_class)
        return gov.CallContext(
            principal=principal,
            purpose=purpose,
            data_class=data_class,
            request_id=metadata.get(gov.REQUEST_ID_HEADER) or uuid.uuid4().hex,
            idempotency_key=metadata.get(gov.IDEMPOTENCY_KEY_HEADER, ""),
            bearer_token=authorization.partition(" ")[2].strip(),
        )

    @asynccontextmanager
    async def _call_scope(
        self, context: grpc.aio.ServicerContext, request: object | None, *, method: str
    ) -> AsyncIterator[_ServedCall]:
        span = trace.get_current_span()
        span_context = span.get_span_context()
        served = _ServedCall(
            method,
            request,
            datetime.now(UTC),
            format(span_context.trace_id, "032x"),
            format(span_context.span_id, "016x"),
        )
        fields_token = request_fields.set({"trace_id": served.trace_id})
        call_token = None
        report_token = _access_report.set(served.report)
        decision = "DENY"  # until the runtime's own checks pass
        release_limit = None
        try:
            call = served.call = self._establish(context, served)
            roles.authorize(method, call.principal.roles, call.principal.subject)
            if self._limiter is not None:
                metered = method not in CONTINUATIONS
                release_limit = self._limiter.admit(call.tenant, metered=metered)
                if metered and self._limiter.limits.calls_per_second:
                    served.pace = functools.partial(self._limiter.pace, call.tenant)
            if self._idempotency is not None and call.idempotency_key and request is not None:
                await self._idempotency.bind(
                    call.tenant, method.removeprefix("/"), call.idempotency_key, served.request_digest()
                )
            decision = "ALLOW"
            call_token = _current_call.set(call)
            request_fields.set(
                {
                    "trace_id": served.trace_id,
                    "request_id": call.request_id,
                    "tenant": call.tenant,
                    "subject": call.principal.subject,
                    "purpose": call.purpose,
                }
            )
            span.set_attributes(
                {
                    TENANT_ATTRIBUTE: call.tenant,
                    PURPOSE_ATTRIBUTE: call.purpose,
                    DATA_CLASS_ATTRIBUTE: call.data_class.name,
                    SUBJECT_ATTRIBUTE: call.principal.subject,
                }
            )
            yield served
            try:
                await self._record(served, decision, "OK")
            except Exception:
                logger.exception("the access ledger could not record a call")
                raise Unavailable(
                    "the access could not be recorded, so its reply is withheld", retry_after_seconds=1.0
                ) from None
            report = served.report
            if report.highest_class > gov.DataClass.PUBLIC or report.reported:
                context.set_trailing_metadata(((gov.DERIVED_CLASS_HEADER, report.highest_class.name),))
        except MatchaError as error:
            await self._record_quietly(served, decision, error.code.name, error.reason or "")
            raise _Refused(rpc_status.to_status(status_from_error(error))) from None
        except NotImplementedError:
            await self._record_quietly(served, decision, grpc.StatusCode.UNIMPLEMENTED.name)
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented yet")
        except grpc.aio.AbortError:
            raise
        except asyncio.CancelledError:
            # The client left (a watch stream closed, a deadline): what was sent still goes on the record, from a
            # task of its own since this one is being cancelled.
            if not served.recorded:
                recording = asyncio.ensure_future(
                    self._record_quietly(served, decision, grpc.StatusCode.CANCELLED.name)
                )
                self._background.add(recording)
                recording.add_done_callback(self._background.discard)
            raise
        except Exception:
            logger.exception("unexpected error serving the call")
            await self._record_quietly(served, decision, grpc.StatusCode.INTERNAL.name)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {served.trace_id})")
        finally:
            if release_limit is not None:
                release_limit()
            # A cancelled stream's generator may be finalised from another task's context, where these tokens
            # mean nothing; that context is being discarded anyway.
            with contextlib.suppress(ValueError):
                if call_token is not None:
                    _current_call.reset(call_token)
                _access_report.reset(report_token)
                request_fields.reset(fields_token)

    async def _record(self, served: _ServedCall, decision: str, status: str, reason: str = "") -> None:
        """Writes the call's access row once; a call refused before its caller was known has no tenant to
        be recorded under (it reached no data)."""
        if self._ledger is None or served.principal is None or served.recorded:
            return
        served.recorded = True
        call, report = served.call, served.report
        entry = AccessEntry(
            time=served.started,
            method=served.method.removeprefix("/"),
            principal=served.principal.subject,
            run_id=served.principal.run_id,
            roles=tuple(sorted(served.principal.roles)),
            purpose=call.purpose if call else "",
            data_class_declared=call.data_class.name if call else "",
            data_class_derived=report.highest_class.name if report.reported else "",
            resources=tuple(sorted(report.resources)),
            subject_digests=tuple(
                sorted(self._ledger.subject_digest(served.principal.tenant, subject) for subject in report.subjects)
            ),
            records=report.records,
            models=tuple(sorted(report.models)),
            request_sha256=served.request_digest(),
            response_sha256=_message_digest(served.reply),
            decision=decision,
            reason=reason,
            status_code=status,
            request_id=call.request_id if call else "",
            trace_id=served.trace_id,
            span_id=served.span_id,
        )
        await self._ledger.record(served.principal.tenant, entry)

    async def _record_quietly(self, served: _ServedCall, decision: str, status: str, reason: str = "") -> None:
        """On a call that fails anyway, a ledger that cannot write is logged, not reported over its error."""
        try:
            await self._record(served, decision, status, reason)
        except Exception:
            logger.exception("the access ledger could not record a failed call")


def _message_digest(message: object | None) -> str:
    """SHA-256 of a unary request or reply as serialised; streams are not digested."""
    serialize = getattr(message, "SerializeToString", None)
    return digest(serialize()) if serialize is not None else ""


ScopeFactory = Callable[[grpc.aio.ServicerContext, object | None], contextlib.AbstractAsyncContextManager[_ServedCall]]


class _Refused(Exception):
    """A call answered with an error status. The handler's wrapper sets the status on the context and returns:
    raised on to gRPC (`abort`), the exception would reach the tracing interceptor, which formats its traceback
    onto the span, a cost every refusal paid on the event loop (about a sixth of it under a flood of them)."""

    def __init__(self, status: grpc.Status) -> None:
        self.status = status

    def answer(self, context: grpc.aio.ServicerContext) -> None:
        context.set_code(self.status.code)
        context.set_details(self.status.details)
        context.set_trailing_metadata(self.status.trailing_metadata)


def _metered(request, served: _ServedCall):
    """A request stream's messages as the handler reads them: paced when the caller's rate is metered."""
    return request if served.pace is None else _paced(request, served.pace)


async def _paced(messages: AsyncIterator, pace: Callable[[], Awaitable[None]]) -> AsyncIterator:
    """The stream's messages, each after the first (which the call's admission paid for) once `pace` allows."""
    first = True
    async for message in messages:
        if not first:
            await pace()
        first = False
        yield message


def _wrap_handler(handler: grpc.RpcMethodHandler, scope: ScopeFactory) -> grpc.RpcMethodHandler:
    # Only unary requests are digested; a request stream is an iterator the handler consumes.
    streamed_request = handler.request_streaming

    def unary_response(behaviour):
        async def wrapped(request, context):
            try:
                async with scope(context, None if streamed_request else request) as served:
                    result = behaviour(_metered(request, served) if streamed_request else request, context)
                    served.reply = await result if inspect.isawaitable(result) else result
            except _Refused as refused:
                refused.answer(context)
                return None  # gRPC sends no message with a status other than OK
            return served.reply

        return wrapped

    def stream_response(behaviour):
        async def wrapped(request, context):
            try:
                async with scope(context, None if streamed_request else request) as served:
                    result = behaviour(_metered(request, served) if streamed_request else request, context)
                    if inspect.isawaitable(result):  # handler writes with context.write()
                        await result
                        return
                    async for item in result:
                        yield item
            except _Refused as refused:
                refused.answer(context)

        return wrapped

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **serializers)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **serializers)
