"""The runtime every Matcha service stands on. Services import these modules of it, and only these (a test holds
it so); the runtime imports no service.

Serving: `main` (a process's entry: settings, logs, tracing, server), `server` (gRPC server bootstrap: health,
reflection, self-description, interceptors), `settings`, `logs`, `tracing`.
Governance: `governance` (call context, data classes, record policy, clearance), `roles` (the role table),
`interceptors` (the current call, records a reply reports), `auth` (tokens and keys), `access` (the access
ledger), `chain` (hash chains), `data_map` and `data_map_messages` (what a service holds about a subject),
`pii` (personal-data detection), `egress` (outbound HTTP to tenant-chosen destinations), `secrets`.
Calling other services: `channels` (one pool per address, generic calls, health), `client` (metadata, rich
error details), `retry` (one backoff).
State: `database` (pool, migrations, transaction pooler), `notifications` (LISTEN/NOTIFY), `page_tokens`.
Messages and errors: `errors` (domain errors carrying gRPC statuses), `messages` (shared message conversions),
`batching` (micro-batching for models).
Private to the runtime: `idempotency` and `limits` (applied by the interceptors), the access ledger's migrations.
"""

PUBLIC_MODULES = frozenset(
    {
        "access",
        "auth",
        "batching",
        "chain",
        "channels",
        "client",
        "data_map",
        "data_map_messages",
        "database",
        "egress",
        "errors",
        "governance",
        "interceptors",
        "logs",
        "main",
        "messages",
        "notifications",
        "page_tokens",
        "pii",
        "retry",
        "roles",
        "secrets",
        "server",
        "settings",
        "tracing",
        "v1",
    }
)
