-- Experiments over published variants: the audience's recorded arms, outcome events deduplicated by id, and
-- per-arm counters updated in the transaction that stores the events.
CREATE TABLE review_experiments (
    tenant             text             NOT NULL,
    id                 text             NOT NULL,
    name               text             NOT NULL,
    -- Key of the assignment hash: arms are independent from one experiment to the next.
    hash_key           bytea            NOT NULL,
    holdout_share      double precision NOT NULL,
    min_sample_per_arm integer          NOT NULL,
    creator            text             NOT NULL,
    data_class         integer          NOT NULL,
    purpose            text             NOT NULL,
    promoted_variant   text,
    promoter           text,
    promoted_at        timestamptz,
    created_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);

CREATE TABLE review_experiment_variants (
    tenant         text    NOT NULL,
    experiment_id  text    NOT NULL,
    label          text    NOT NULL,
    position       integer NOT NULL,
    publication_id text    NOT NULL,
    PRIMARY KEY (tenant, experiment_id, label),
    UNIQUE (tenant, publication_id),
    FOREIGN KEY (tenant, experiment_id) REFERENCES review_experiments (tenant, id) ON DELETE CASCADE
);

CREATE TABLE review_experiment_members (
    tenant        text        NOT NULL,
    experiment_id text        NOT NULL,
    customer_id   text        NOT NULL,
    -- Variant label or 'holdout'.
    arm           text        NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, experiment_id, customer_id)
);
CREATE INDEX review_experiment_members_customer ON review_experiment_members (tenant, customer_id);

CREATE TABLE review_outcome_events (
    tenant        text             NOT NULL,
    event_id      text             NOT NULL,
    experiment_id text             NOT NULL,
    customer_id   text             NOT NULL,
    arm           text             NOT NULL,
    outcome       text             NOT NULL,
    value         double precision NOT NULL,
    at            timestamptz      NOT NULL,
    ingested_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, event_id)
);
CREATE INDEX review_outcome_events_customer ON review_outcome_events (tenant, customer_id);

-- First occurrence of each outcome per customer: a rate counts customers, not events.
CREATE TABLE review_member_outcomes (
    tenant        text        NOT NULL,
    experiment_id text        NOT NULL,
    customer_id   text        NOT NULL,
    outcome       text        NOT NULL,
    arm           text        NOT NULL,
    first_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant, experiment_id, customer_id, outcome)
);

CREATE TABLE review_experiment_counters (
    tenant        text             NOT NULL,
    experiment_id text             NOT NULL,
    arm           text             NOT NULL,
    outcome       text             NOT NULL,
    customers     bigint           NOT NULL,
    events        bigint           NOT NULL,
    value_sum     double precision NOT NULL,
    PRIMARY KEY (tenant, experiment_id, arm, outcome)
);
