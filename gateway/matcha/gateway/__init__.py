"""HTTP/JSON gateway: transcodes `google.api.http` routes to the gRPC services, serves OpenAPI and health."""
