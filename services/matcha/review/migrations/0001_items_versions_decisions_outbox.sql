-- Review items: one row per draft, with its current version denormalised for listing.
CREATE TABLE review_items (
    id                uuid        PRIMARY KEY,
    tenant            text        NOT NULL,
    status            text        NOT NULL,
    version           integer     NOT NULL,
    format            text        NOT NULL,
    channel           text        NOT NULL,
    target            text        NOT NULL,
    audience          jsonb       NOT NULL,
    provenance        jsonb       NOT NULL,
    voice_score       real,
    flags             jsonb       NOT NULL,
    priority          integer     NOT NULL,
    due_at            timestamptz NOT NULL,
    four_eyes         boolean     NOT NULL,
    submitter         text        NOT NULL,
    -- Governance context of the submission, reused when signalling the run.
    data_class        integer     NOT NULL,
    purpose           text        NOT NULL,
    claimed_by        text,
    claimed_at        timestamptz,
    claim_expires_at  timestamptz,
    approved_version  integer,
    approved_sha256   text,
    approved_diff     text        NOT NULL DEFAULT '',
    resume_run_id     text        NOT NULL DEFAULT '',
    resume_signal_key text        NOT NULL DEFAULT '',
    idempotency_key   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, idempotency_key)
);
-- The queue order of List, and the sweeper's search for overdue items.
CREATE INDEX review_items_queue ON review_items (tenant, due_at, priority DESC, id);
CREATE INDEX review_items_open_due ON review_items (due_at) WHERE status IN ('PENDING', 'REVISED');
CREATE INDEX review_items_claims ON review_items (claim_expires_at) WHERE claimed_by IS NOT NULL;

CREATE TABLE review_versions (
    item_id         uuid        NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    number          integer     NOT NULL,
    title           text        NOT NULL,
    content         text        NOT NULL,
    content_sha256  text        NOT NULL,
    origin          text        NOT NULL,
    author          text        NOT NULL,
    provenance      jsonb       NOT NULL,
    comment         text        NOT NULL,
    diff            text        NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, number),
    UNIQUE (item_id, idempotency_key)
);

CREATE TABLE review_decisions (
    id              bigserial   PRIMARY KEY,
    item_id         uuid        NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    outcome         text        NOT NULL,
    comment         text        NOT NULL,
    reviewer        text        NOT NULL,
    role            text        NOT NULL,
    version         integer     NOT NULL,
    content_sha256  text        NOT NULL,
    idempotency_key text,
    decided_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, idempotency_key)
);
CREATE INDEX review_decisions_item ON review_decisions (item_id, id);

-- The tenant's event log; the sequence only grows, so watchers resume after the last one seen.
CREATE TABLE review_events (
    sequence    bigserial   PRIMARY KEY,
    tenant      text        NOT NULL,
    item_id     uuid        NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    type        text        NOT NULL,
    status      text        NOT NULL,
    version     integer     NOT NULL,
    actor       text        NOT NULL,
    decision_id bigint      REFERENCES review_decisions (id),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_events_tenant ON review_events (tenant, sequence);
CREATE INDEX review_events_item ON review_events (item_id, sequence);

CREATE TABLE review_publications (
    id             uuid        PRIMARY KEY,
    tenant         text        NOT NULL,
    item_id        uuid        NOT NULL UNIQUE REFERENCES review_items (id) ON DELETE CASCADE,
    version        integer     NOT NULL,
    content_sha256 text        NOT NULL,
    publisher      text        NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the transaction of the decision or publication it
-- reports, delivered afterwards by the dispatcher with retries.
CREATE TABLE review_outbox (
    id              bigserial   PRIMARY KEY,
    tenant          text        NOT NULL,
    item_id         uuid        NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    -- 'run_signal': destination is the run id, key the signal key.
    -- 'sink': destination is the sink name, key the publication id.
    kind            text        NOT NULL,
    destination     text        NOT NULL,
    key             text        NOT NULL,
    publication_id  uuid        REFERENCES review_publications (id) ON DELETE CASCADE,
    payload         jsonb       NOT NULL,
    data_class      integer     NOT NULL,
    purpose         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'PENDING',
    attempts        integer     NOT NULL DEFAULT 0,
    last_error_code integer,
    last_error      text        NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, destination, key)
);
CREATE INDEX review_outbox_due ON review_outbox (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX review_outbox_item ON review_outbox (item_id, kind, id);
