-- Per-tenant state: the reference time features are computed at, and the change log's last sequence.
CREATE TABLE segmentation_tenants (
    tenant          text        PRIMARY KEY,
    reference_time  timestamptz,
    change_sequence bigint      NOT NULL DEFAULT 0
);

-- Customers with the running aggregates their built-in features derive from, so a
-- transaction or an event updates them in place instead of rescanning history.
CREATE TABLE segmentation_customers (
    key                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant             text        NOT NULL,
    id                 text        NOT NULL,
    attributes         jsonb       NOT NULL DEFAULT '{}',
    custom_features    jsonb       NOT NULL DEFAULT '{}',
    join_time          timestamptz,
    data_class         smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    consented_purposes text[]      NOT NULL DEFAULT '{}',
    source             text        NOT NULL DEFAULT '',
    subject_id         text        NOT NULL DEFAULT '',
    purchases          bigint      NOT NULL DEFAULT 0,
    spend              float8      NOT NULL DEFAULT 0,
    quantity           float8      NOT NULL DEFAULT 0,
    first_purchase_at  timestamptz,
    last_purchase_at   timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, id)
);
CREATE INDEX segmentation_customers_subject ON segmentation_customers (tenant, subject_id);

CREATE TABLE segmentation_transactions (
    tenant       text        NOT NULL,
    id           text        NOT NULL,
    customer_key bigint      NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    time         timestamptz NOT NULL,
    amount       float8      NOT NULL CHECK (amount >= 0),
    quantity     float8      NOT NULL CHECK (quantity >= 0),
    channel      text        NOT NULL DEFAULT '',
    item_id      text        NOT NULL DEFAULT '',
    refund       boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX segmentation_transactions_customer ON segmentation_transactions (customer_key, time);

CREATE TABLE segmentation_events (
    tenant       text        NOT NULL,
    id           text        NOT NULL,
    customer_key bigint      NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    type         smallint    NOT NULL CHECK (type BETWEEN 1 AND 3),
    time         timestamptz NOT NULL,
    item_id      text        NOT NULL DEFAULT '',
    amount       float8      NOT NULL DEFAULT 0,
    quantity     float8      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX segmentation_events_customer ON segmentation_events (customer_key, time);

-- One row per built version; `model` holds everything assignment needs (scaling,
-- centres, quintile edges, rules), `snapshot` a seeded sample of the build-time
-- feature matrix for drift (values only, no customer reference).
CREATE TABLE segmentation_versions (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          text        NOT NULL,
    name            text        NOT NULL,
    version         integer     NOT NULL,
    description     text        NOT NULL DEFAULT '',
    state           smallint    NOT NULL,
    progress        jsonb       NOT NULL DEFAULT '{}',
    error           jsonb,
    method          smallint    NOT NULL,
    features        text[]      NOT NULL,
    model           jsonb       NOT NULL DEFAULT '{}',
    snapshot        bytea,
    silhouette      float8      NOT NULL DEFAULT 0,
    seed            bigint      NOT NULL DEFAULT 0,
    population      bigint      NOT NULL DEFAULT 0,
    create_subject  text        NOT NULL DEFAULT '',
    purpose         text        NOT NULL,
    idempotency_key text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    UNIQUE (tenant, name, version)
);
CREATE UNIQUE INDEX segmentation_versions_idempotency ON segmentation_versions (tenant, idempotency_key)
    WHERE idempotency_key <> '';

CREATE TABLE segmentation_segments (
    version_id   bigint   NOT NULL REFERENCES segmentation_versions (id) ON DELETE CASCADE,
    position     smallint NOT NULL,
    id           text     NOT NULL,
    name         text     NOT NULL,
    size         bigint   NOT NULL,
    share        float8   NOT NULL,
    outliers     boolean  NOT NULL DEFAULT false,
    condition    text     NOT NULL DEFAULT '',
    profile      jsonb    NOT NULL DEFAULT '[]',
    top_features text[]   NOT NULL DEFAULT '{}',
    persona      jsonb,
    PRIMARY KEY (version_id, position),
    UNIQUE (version_id, id)
);

CREATE TABLE segmentation_exemplars (
    version_id   bigint   NOT NULL REFERENCES segmentation_versions (id) ON DELETE CASCADE,
    position     smallint NOT NULL,
    rank         smallint NOT NULL,
    customer_key bigint   NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    distance     float8   NOT NULL,
    PRIMARY KEY (version_id, position, rank)
);

-- Written by binary COPY at build time (no foreign key: erasure deletes by customer
-- key explicitly). `build_position` keeps the build-time segment for drift after
-- live re-assignment has moved `position`; -1 for customers who joined after the build.
CREATE TABLE segmentation_memberships (
    version_id     bigint      NOT NULL,
    customer_key   bigint      NOT NULL,
    position       smallint    NOT NULL,
    build_position smallint    NOT NULL,
    distance       float8      NOT NULL,
    confidence     float8      NOT NULL,
    since          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, customer_key)
);
CREATE INDEX segmentation_memberships_segment ON segmentation_memberships (version_id, position, distance);

CREATE TABLE segmentation_changes (
    tenant        text        NOT NULL,
    sequence      bigint      NOT NULL,
    time          timestamptz NOT NULL DEFAULT now(),
    customer_key  bigint      NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    customer_id   text        NOT NULL,
    segmentation  text        NOT NULL,
    version       integer     NOT NULL,
    from_segment  text        NOT NULL,
    to_segment    text        NOT NULL,
    to_name       text        NOT NULL,
    cause_id      text        NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, sequence)
);
CREATE INDEX segmentation_changes_customer ON segmentation_changes (customer_key, sequence);

-- Replies of side-effecting calls by idempotency key, replayed on a retry.
CREATE TABLE segmentation_idempotency (
    tenant     text        NOT NULL,
    method     text        NOT NULL,
    key        text        NOT NULL,
    reply      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, method, key)
);

-- Catalogue items; `vector` (any dimension, one per tenant) feeds content similarity.
CREATE TABLE segmentation_items (
    tenant        text        NOT NULL,
    id            text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    category      text        NOT NULL DEFAULT '',
    attributes    jsonb       NOT NULL DEFAULT '{}',
    vector        vector,
    model_id      text        NOT NULL DEFAULT '',
    model_version text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX segmentation_transactions_item ON segmentation_transactions (tenant, item_id) WHERE item_id <> '';
