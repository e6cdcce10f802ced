"""The one server interceptor: authentication, governance context, error mapping.

It wraps every method handler (all four streaming shapes) so that within a call:
the bearer token is verified, the governance context is established and checked
against the service's clearance, the caller's roles against the role table
(`roles`), logs and spans carry its fields, and any error leaves as a gRPC
status with `google.rpc` details; never as a stack trace.
"""

import contextlib
import functools
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace

from matcha.runtime import governance as gov
from matcha.runtime import roles
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.client import STATUS_DETAILS_KEY
from matcha.runtime.errors import (
    ERROR_DOMAIN,
    FieldViolation,
    InvalidArgument,
    MatchaError,
    PermissionDenied,
)
from matcha.runtime.logs import request_fields
from matcha.runtime.tracing import (
    DATA_CLASS_ATTRIBUTE,
    PURPOSE_ATTRIBUTE,
    SUBJECT_ATTRIBUTE,
    TENANT_ATTRIBUTE,
)

logger = logging.getLogger(__name__)

# Probes and tooling must work without a token.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)

_current_call: ContextVar[gov.CallContext] = ContextVar("matcha_call_context")
# The highest class among the records the call returned, reported by the handler.
_derived_class: ContextVar[list] = ContextVar("matcha_derived_class")


def current_call() -> gov.CallContext:
    """The governance context of the call being served (set by the interceptor)."""
    return _current_call.get()


def report_derived_class(*classes: gov.DataClass) -> None:
    """Raises the class the reply reports in `x-matcha-derived-class` (PUBLIC when it returns no record)."""
    holder = _derived_class.get(None)
    if holder is not None:
        holder[0], holder[1] = max([holder[0], *classes]), True


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
    def __init__(self, verifier: TokenVerifier, clearance: gov.Clearance) -> None:
        self._verifier = verifier
        self._clearance = clearance

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        return _wrap_handler(handler, functools.partial(self._call_scope, method=handler_call_details.method))

    def _establish(self, context: grpc.aio.ServicerContext, method: str) -> gov.CallContext:
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        authorization = metadata.get(gov.AUTHORIZATION_HEADER)
        principal = self._verifier.verify(authorization)
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
        if not roles.is_erasure(method, purpose, principal.roles):
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
    async def _call_scope(self, context: grpc.aio.ServicerContext, *, method: str) -> AsyncIterator[None]:
        span = trace.get_current_span()
        trace_id = format(span.get_span_context().trace_id, "032x")
        fields_token = request_fields.set({"trace_id": trace_id})
        call_token = None
        derived = [gov.DataClass.PUBLIC, False]  # highest class reported, whether any was
        derived_token = _derived_class.set(derived)
        try:
            call = self._establish(context, method)
            roles.authorize(method, call.principal.roles, call.principal.subject)
            call_token = _current_call.set(call)
            request_fields.set(
                {
                    "trace_id": trace_id,
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
            yield
            if derived[0] > gov.DataClass.PUBLIC or derived[1]:
                context.set_trailing_metadata(((gov.DERIVED_CLASS_HEADER, derived[0].name),))
        except MatchaError as error:
            status = status_from_error(error)
            await context.abort(
                error.code,
                error.message,
                trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),),
            )
        except NotImplementedError:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented yet")
        except grpc.aio.AbortError:
            raise
        except Exception:
            logger.exception("unexpected error serving the call")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")
        finally:
            # A cancelled stream's generator may be finalised from another task's context, where these tokens
            # mean nothing; that context is being discarded anyway.
            with contextlib.suppress(ValueError):
                if call_token is not None:
                    _current_call.reset(call_token)
                _derived_class.reset(derived_token)
                request_fields.reset(fields_token)


ScopeFactory = Callable[[grpc.aio.ServicerContext], object]


def _wrap_handler(handler: grpc.RpcMethodHandler, scope: ScopeFactory) -> grpc.RpcMethodHandler:
    def unary_response(behaviour):
        async def wrapped(request, context):
            async with scope(context):
                result = behaviour(request, context)
                return await result if inspect.isawaitable(result) else result

        return wrapped

    def stream_response(behaviour):
        async def wrapped(request, context):
            async with scope(context):
                result = behaviour(request, context)
                if inspect.isawaitable(result):  # handler writes with context.write()
                    await result
                    return
                async for item in result:
                    yield item

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
