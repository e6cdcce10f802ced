-- Each idempotency key a tenant used on a method, bound to the request it first came with: the same key with
-- another request is refused before it reaches the service (whose own dedupe would answer the first request's
-- outcome). Keys and requests are kept as SHA-256 digests: a client's key may say anything.
CREATE TABLE idempotency_keys (
    tenant         text        NOT NULL,
    method         text        NOT NULL,
    key_sha256     text        NOT NULL,
    request_sha256 text        NOT NULL,
    bound_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, method, key_sha256)
);
