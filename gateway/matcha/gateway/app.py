"""The gateway's ASGI application: routes from the catalog, calls to the backends, JSON back."""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Router
from starlette.types import ASGIApp

from matcha.gateway.backends import SERVING, Backends
from matcha.gateway.catalog import Catalog, MethodNotAllowed, Route, RouteNotFound
from matcha.gateway.errors import error_response, status_json, status_of_rpc_error, status_response
from matcha.gateway.openapi import build_openapi
from matcha.gateway.proto_docs import ProtoComments
from matcha.gateway.review_page import ReviewPage
from matcha.gateway.settings import GatewaySettings
from matcha.gateway.transcoding import build_requests, render
from matcha.runtime import governance as gov
from matcha.runtime.auth import TokenVerifier
from matcha.runtime.errors import ERROR_DOMAIN, MatchaError, NotFound, ResourceExhausted, Unavailable
from matcha.runtime.logs import request_fields

logger = logging.getLogger(__name__)

# HTTP headers forwarded to the backends as gRPC metadata (the governance context of common.proto).
FORWARDED_HEADERS = (
    gov.AUTHORIZATION_HEADER,
    gov.PURPOSE_HEADER,
    gov.DATA_CLASS_HEADER,
    gov.TENANT_HEADER,
    gov.IDEMPOTENCY_KEY_HEADER,
)
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
OPEN_PATHS = ("/healthz", "/readyz", "/openapi.json")


class BodyTooLarge(ResourceExhausted):
    pass


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _method_not_allowed(method: str, path: str, allowed: list[str]) -> Response:
    # As grpc-gateway does: UNIMPLEMENTED in the body, 405 on the wire.
    status = status_pb2.Status(
        code=grpc.StatusCode.UNIMPLEMENTED.value[0], message=f"{method} is not allowed on {path}"
    )
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(
            reason="METHOD_NOT_ALLOWED", domain=ERROR_DOMAIN, metadata={"allowed": ", ".join(allowed)}
        )
    )
    return status_response(status, 405, headers={"allow": ", ".join(allowed)})


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        catalog: Catalog,
        backends: Backends,
        verifier: TokenVerifier,
        openapi: dict,
        review_page: ReviewPage,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._backends = backends
        self._verifier = verifier
        self._openapi = _json_bytes(openapi)
        self._review_page = review_page

    async def dispatch(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get(gov.REQUEST_ID_HEADER) or uuid.uuid4().hex
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        fields_token = request_fields.set({"trace_id": trace_id, "request_id": request_id})
        try:
            response = await self._respond(request, request_id)
        except MatchaError as error:
            response = error_response(error, 413 if isinstance(error, BodyTooLarge) else None)
        except Exception:
            logger.exception("unexpected error serving the request")
            status = status_pb2.Status(
                code=grpc.StatusCode.INTERNAL.value[0], message=f"internal error (trace id {trace_id})"
            )
            response = status_response(status)
        finally:
            request_fields.reset(fields_token)
        response.headers[gov.REQUEST_ID_HEADER] = request_id
        if request.url.path not in OPEN_PATHS:
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "trace_id": trace_id,
                    "request_id": request_id,
                },
            )
        return response

    async def _respond(self, request: Request, request_id: str) -> Response:
        path, method = request.url.path, request.method
        if ReviewPage.handles(path):
            # Static files: the page's own calls carry the reviewer's token, the files themselves hold no data.
            if method not in ("GET", "HEAD"):
                return _method_not_allowed(method, path, ["GET", "HEAD"])
            page = self._review_page.respond(request)
            if page is None:
                raise NotFound(f"no file {path}", reason="ROUTE_NOT_FOUND")
            return page
        if path in OPEN_PATHS:
            if method != "GET":
                return _method_not_allowed(method, path, ["GET"])
            return await {"/healthz": self._healthz, "/readyz": self._readyz, "/openapi.json": self._openapi_json}[
                path
            ]()
        try:
            route, path_variables = self._catalog.find(method, path)
        except MethodNotAllowed as refusal:
            return _method_not_allowed(method, path, refusal.allowed)
        except RouteNotFound:
            raise NotFound(f"no route for {method} {path}", reason="ROUTE_NOT_FOUND") from None
        # Name the server span by its route template, not the concrete path, to keep span names few.
        span = trace.get_current_span()
        span.update_name(f"{method} {route.template.template}")
        span.set_attribute("http.route", route.template.template)
        try:
            self._verifier.verify(request.headers.get(gov.AUTHORIZATION_HEADER))
        except MatchaError as error:
            return error_response(error, headers={"www-authenticate": "Bearer"})
        if not self._backends.is_configured(route.service_name):
            raise Unavailable(
                f"{route.service_name} is not configured in this gateway",
                reason="SERVICE_NOT_CONFIGURED",
                metadata={"service": route.service_name},
            )
        body = await self._read_body(request) if route.body or route.streams_requests else b""
        messages = build_requests(
            route,
            path_variables,
            list(request.query_params.multi_items()),
            body,
            json_lines=request.headers.get("content-type", "").startswith(NDJSON),
        )
        metadata = [(name, request.headers[name]) for name in FORWARDED_HEADERS if name in request.headers]
        metadata.append((gov.REQUEST_ID_HEADER, request_id))
        call_argument = iter(messages) if route.streams_requests else messages[0]
        if route.streams_responses:
            return await self._stream(route, call_argument, metadata, request.headers.get("accept", ""))
        call = self._backends.callable_for(route)(
            call_argument, metadata=metadata, timeout=self._settings.gateway_call_timeout_seconds
        )
        try:
            reply = await call
        except grpc.aio.AioRpcError as error:
            return status_response(status_of_rpc_error(error, route.service_name))
        return Response(_json_bytes(render(route, reply)), media_type="application/json")

    async def _read_body(self, request: Request) -> bytes:
        limit = self._settings.gateway_max_body_bytes
        refusal = BodyTooLarge(
            f"request body exceeds {limit} bytes", reason="BODY_TOO_LARGE", metadata={"limit_bytes": str(limit)}
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise refusal
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise refusal
            chunks.append(chunk)
        return b"".join(chunks)

    async def _stream(self, route: Route, argument, metadata, accept: str) -> Response:
        """Server streaming as SSE, or NDJSON when asked; a failure before the first message keeps its HTTP status."""
        call = self._backends.callable_for(route)(argument, metadata=metadata)
        first = asyncio.ensure_future(call.read())
        await asyncio.wait({first}, timeout=self._settings.gateway_stream_start_wait_seconds)
        if first.done() and isinstance(first.exception(), grpc.aio.AioRpcError):
            return status_response(status_of_rpc_error(first.exception(), route.service_name))
        json_lines = NDJSON in accept

        def frame(message: Message) -> bytes:
            value = render(route, message)
            return _json_bytes({"result": value}) + b"\n" if json_lines else b"data: " + _json_bytes(value) + b"\n\n"

        def error_frame(status: status_pb2.Status) -> bytes:
            if json_lines:
                return _json_bytes({"error": status_json(status)}) + b"\n"
            return b"event: error\ndata: " + _json_bytes(status_json(status)) + b"\n\n"

        async def frames() -> AsyncIterator[bytes]:
            # Cancelled when the client disconnects: the finally clause cancels the gRPC call with it.
            try:
                message = await first
                while message is not grpc.aio.EOF:
                    yield frame(message)
                    message = await call.read()
            except grpc.aio.AioRpcError as error:
                yield error_frame(status_of_rpc_error(error, route.service_name))
            finally:
                first.cancel()
                call.cancel()

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(frames(), media_type=NDJSON if json_lines else SSE, headers=headers)

    async def _healthz(self) -> Response:
        return JSONResponse({"status": SERVING})

    async def _readyz(self) -> Response:
        """Ready on itself and its critical backends: one service down must not take every gateway pod out of
        rotation, since the routes of the others still work."""
        services = await self._backends.health(self._settings.gateway_readiness_timeout_seconds)
        critical = self._settings.gateway_critical_backends
        ready = all(services[name] == SERVING for name in critical)
        return JSONResponse(
            {"status": SERVING if ready else "NOT_SERVING", "services": services, "critical": critical},
            status_code=200 if ready else 503,
        )

    async def _openapi_json(self) -> Response:
        return Response(self._openapi, media_type="application/json")


def build_gateway(
    settings: GatewaySettings,
    tracer_provider: TracerProvider,
    verifier: TokenVerifier,
    catalog: Catalog | None = None,
    comments: ProtoComments | None = None,
):
    """The ASGI application; backends are connected by its lifespan."""
    catalog = catalog or Catalog.from_generated_modules()
    unknown = sorted(set(settings.gateway_backends) - set(catalog.services))
    if unknown:
        raise ValueError(
            f"MATCHA_GATEWAY_BACKENDS names services without HTTP routes: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(catalog.services))}"
        )
    backends = Backends(settings.gateway_backends, tracer_provider, settings.transport)
    openapi = build_openapi(catalog, comments or ProtoComments.shipped())
    gateway = Gateway(settings, catalog, backends, verifier, openapi, ReviewPage.shipped())

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await backends.open()
        try:
            yield
        finally:
            await backends.close()

    async def handle(scope, receive, send) -> None:
        response = await gateway.dispatch(Request(scope, receive))
        await response(scope, receive, send)

    # No router of its own: every path, even one no template could match, gets the gateway's JSON answer.
    app: ASGIApp = Router(default=handle, lifespan=lifespan)
    if settings.gateway_cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=settings.gateway_cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                *FORWARDED_HEADERS,
                gov.REQUEST_ID_HEADER,
                "content-type",
                "accept",
                "traceparent",
                "tracestate",
            ],
            expose_headers=[gov.REQUEST_ID_HEADER],
            max_age=600,
        )
    return OpenTelemetryMiddleware(
        app, tracer_provider=tracer_provider, excluded_urls="healthz,readyz", exclude_spans=["receive", "send"]
    )
