-- Alert triggers: a run of a plan started on every alert of a listening watch, once. The cursor (the last alert
-- handled) moves in the same transaction as the run is created; one replica follows a trigger at a time, by lease.
CREATE TABLE conductor_alert_triggers (
    tenant          text        NOT NULL,
    name            text        NOT NULL,
    -- A trigger deleted and made again is another trigger: the start keys of its runs differ.
    id              uuid        NOT NULL UNIQUE,
    -- '' follows every watch of the tenant.
    watch           text        NOT NULL,
    plan_name       text        NOT NULL,
    -- 0: the latest version when each run starts.
    plan_version    integer     NOT NULL,
    alert_inputs    jsonb       NOT NULL,
    fixed_inputs    jsonb       NOT NULL,
    kinds           text[]      NOT NULL,
    purpose         text        NOT NULL,
    data_class      text        NOT NULL,
    creator         text        NOT NULL,
    roles           text[]      NOT NULL,
    -- The creator and their roles, encrypted with the conductor's key as a run's are: the readable columns
    -- above grant nothing.
    credential      bytea       NOT NULL,
    state           text        NOT NULL DEFAULT 'ACTIVE',
    stop_reason     jsonb,
    last_sequence   bigint      NOT NULL DEFAULT 0,
    runs_started    integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_expires   timestamptz,
    PRIMARY KEY (tenant, name)
);

CREATE INDEX conductor_alert_triggers_creator ON conductor_alert_triggers (tenant, creator) WHERE state = 'ACTIVE';
