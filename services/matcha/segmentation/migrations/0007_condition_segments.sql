-- Condition segments: one row per defined version; `definition` is the validated tree.
CREATE TABLE segmentation_condition_segments (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          text        NOT NULL,
    name            text        NOT NULL,
    version         integer     NOT NULL,
    description     text        NOT NULL DEFAULT '',
    definition      jsonb       NOT NULL,
    state           smallint    NOT NULL,
    progress        jsonb       NOT NULL DEFAULT '{}',
    size            bigint      NOT NULL DEFAULT 0,
    purpose         text        NOT NULL,
    create_subject  text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    UNIQUE (tenant, name, version)
);
CREATE UNIQUE INDEX segmentation_condition_segments_idempotency
    ON segmentation_condition_segments (tenant, idempotency_key) WHERE idempotency_key <> '';

-- Current members of each version; erasing a customer removes its rows.
CREATE TABLE segmentation_condition_members (
    segment_id   bigint      NOT NULL REFERENCES segmentation_condition_segments (id) ON DELETE CASCADE,
    customer_key bigint      NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, customer_key)
);
CREATE INDEX segmentation_condition_members_customer ON segmentation_condition_members (customer_key);
