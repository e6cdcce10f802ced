-- Plans, durable runs (steps, fan-out items, events, signals) and the audit ledger.

CREATE TABLE conductor_plans (
    tenant         text        NOT NULL,
    name           text        NOT NULL,
    version        integer     NOT NULL,
    spec           jsonb       NOT NULL,
    source         text        NOT NULL,
    source_format  text        NOT NULL,
    sha256         text        NOT NULL,
    create_subject text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version)
);

CREATE TABLE conductor_runs (
    id              uuid        PRIMARY KEY,
    tenant          text        NOT NULL,
    plan_name       text        NOT NULL,
    plan_version    integer     NOT NULL,
    state           text        NOT NULL,
    inputs          jsonb       NOT NULL,
    outputs         jsonb,
    context         jsonb       NOT NULL,
    -- The caller's bearer token and the pseudonym mapping, encrypted with the conductor's key.
    credential      bytea       NOT NULL,
    pseudonyms      bytea,
    error           jsonb,
    resumed_from    uuid,
    -- Run whose idempotency keys this run uses: itself, or the first run of a resume chain.
    key_root        uuid        NOT NULL,
    trace_span_id   text        NOT NULL DEFAULT '',
    labels          jsonb       NOT NULL DEFAULT '{}',
    trace_id        text        NOT NULL DEFAULT '',
    start_key       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    ended_at        timestamptz,
    deadline        timestamptz NOT NULL,
    lease_owner     text,
    lease_expires   timestamptz,
    event_count     bigint      NOT NULL DEFAULT 0
);
CREATE INDEX conductor_runs_by_tenant ON conductor_runs (tenant, created_at DESC, id);
CREATE INDEX conductor_runs_claimable ON conductor_runs (lease_expires) WHERE state IN ('PENDING', 'RUNNING');
CREATE UNIQUE INDEX conductor_runs_start_key ON conductor_runs (tenant, start_key) WHERE start_key IS NOT NULL;

CREATE TABLE conductor_steps (
    run_id       uuid        NOT NULL REFERENCES conductor_runs (id) ON DELETE CASCADE,
    step_id      text        NOT NULL,
    position     integer     NOT NULL,
    state        text        NOT NULL,
    method       text        NOT NULL DEFAULT '',
    attempts     integer     NOT NULL DEFAULT 0,
    output       jsonb,
    error        jsonb,
    completed    bigint      NOT NULL DEFAULT 0,
    total        bigint      NOT NULL DEFAULT 0,
    failed       bigint      NOT NULL DEFAULT 0,
    awaited_keys text[]      NOT NULL DEFAULT '{}',
    started_at   timestamptz,
    ended_at     timestamptz,
    PRIMARY KEY (run_id, step_id)
);

-- One checkpoint per completed fan-out item.
CREATE TABLE conductor_items (
    run_id     uuid    NOT NULL REFERENCES conductor_runs (id) ON DELETE CASCADE,
    step_id    text    NOT NULL,
    item_index integer NOT NULL,
    output     jsonb,
    PRIMARY KEY (run_id, step_id, item_index)
);

CREATE TABLE conductor_events (
    run_id     uuid        NOT NULL REFERENCES conductor_runs (id) ON DELETE CASCADE,
    sequence   bigint      NOT NULL,
    time       timestamptz NOT NULL DEFAULT now(),
    type       text        NOT NULL,
    run_state  text        NOT NULL,
    step_id    text        NOT NULL DEFAULT '',
    step_state text,
    item_index integer,
    attempt    integer     NOT NULL DEFAULT 0,
    progress   jsonb,
    signal_key text        NOT NULL DEFAULT '',
    error      jsonb,
    PRIMARY KEY (run_id, sequence)
);

CREATE TABLE conductor_signals (
    run_id     uuid        NOT NULL REFERENCES conductor_runs (id) ON DELETE CASCADE,
    key        text        NOT NULL,
    payload    jsonb       NOT NULL,
    subject    text        NOT NULL,
    roles      text[]      NOT NULL,
    consumed   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, key)
);

CREATE TABLE conductor_audit (
    tenant          text        NOT NULL,
    sequence        bigint      NOT NULL,
    time            timestamptz NOT NULL,
    entry           jsonb       NOT NULL,
    run_id          text        NOT NULL,
    target_method   text        NOT NULL,
    decision        text        NOT NULL,
    previous_hash   text        NOT NULL,
    record_hash     text        NOT NULL,
    PRIMARY KEY (tenant, sequence)
);
CREATE INDEX conductor_audit_by_run ON conductor_audit (tenant, run_id, sequence);

-- The ledger is append-only: rows are never updated or deleted by the service.
CREATE FUNCTION conductor_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit ledger is append-only';
END $$;
CREATE TRIGGER conductor_audit_append_only
    BEFORE UPDATE OR DELETE ON conductor_audit
    FOR EACH ROW EXECUTE FUNCTION conductor_audit_append_only();
