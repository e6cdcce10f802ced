-- Listening watches: a named set of sources analysed window by window. One replica owns a watch at a time
-- (lease_owner until lease_expires) and closes its windows; the others wait for the lease to expire.
CREATE TABLE classification_watches (
    tenant                    text        NOT NULL,
    name                      text        NOT NULL,
    description               text        NOT NULL DEFAULT '',
    sources                   jsonb       NOT NULL,
    window_seconds            double precision NOT NULL CHECK (window_seconds > 0),
    look_back_windows         integer     NOT NULL,
    start_time                timestamptz NOT NULL,
    grace_seconds             double precision NOT NULL DEFAULT 0,
    tracked_topics            jsonb       NOT NULL,
    thresholds                jsonb       NOT NULL,
    shift_threshold           double precision NOT NULL,
    min_topic_posts           integer     NOT NULL,
    webhook_url               text        NOT NULL DEFAULT '',
    creator                   text        NOT NULL,
    -- The call that created it: its data class caps the posts it takes.
    data_class                smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    created_at                timestamptz NOT NULL DEFAULT now(),
    next_window_end           timestamptz NOT NULL,
    report_count              bigint      NOT NULL DEFAULT 0,
    lease_owner               text,
    lease_expires             timestamptz,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX classification_watches_due ON classification_watches (next_window_end);

-- What each source of a watch did: counters and its last failure, updated by whichever replica read it.
CREATE TABLE classification_watch_sources (
    tenant            text        NOT NULL,
    watch             text        NOT NULL,
    source            text        NOT NULL,
    position          integer     NOT NULL,
    state             text        NOT NULL DEFAULT 'PENDING',
    accepted_posts    bigint      NOT NULL DEFAULT 0,
    duplicate_posts   bigint      NOT NULL DEFAULT 0,
    rejected_posts    bigint      NOT NULL DEFAULT 0,
    last_rejection    text        NOT NULL DEFAULT '',
    last_error        text        NOT NULL DEFAULT '',
    last_attempt_at   timestamptz,
    last_success_at   timestamptz,
    -- Feed sources: the ETag / Last-Modified of the last fetch.
    cursor            jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, watch, source),
    FOREIGN KEY (tenant, watch) REFERENCES classification_watches (tenant, name) ON DELETE CASCADE
);

-- Posts of a watch, counted once per id. The embedding and polarity are computed once, when the post's
-- window (or a later one) closes, and reused by the following reports of the look-back.
CREATE TABLE classification_watch_posts (
    tenant             text        NOT NULL,
    watch              text        NOT NULL,
    post_id            text        NOT NULL,
    text               text        NOT NULL,
    published_at       timestamptz NOT NULL,
    arrived_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    source             text        NOT NULL,
    data_class         smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    consented_purposes text[]      NOT NULL,
    subject_id         text        NOT NULL DEFAULT '',
    embedding          bytea,
    sentiment          text,
    PRIMARY KEY (tenant, watch, post_id),
    FOREIGN KEY (tenant, watch) REFERENCES classification_watches (tenant, name) ON DELETE CASCADE
);
CREATE INDEX classification_watch_posts_time ON classification_watch_posts (tenant, watch, published_at);
CREATE INDEX classification_watch_posts_subject ON classification_watch_posts (tenant, subject_id)
    WHERE subject_id <> '';

-- One report per closed window. `post_ids`: the posts whose text the report shows (for erasure).
CREATE TABLE classification_watch_reports (
    tenant          text        NOT NULL,
    watch           text        NOT NULL,
    window_end      timestamptz NOT NULL,
    window_start    timestamptz NOT NULL,
    closed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    window_posts    integer     NOT NULL,
    report          jsonb       NOT NULL,
    -- Unit centroids of the report's weak and strong topics (float32, topic after topic): the next window
    -- tells a new signal from one already seen by them.
    centroids       bytea       NOT NULL,
    post_ids        text[]      NOT NULL,
    data_class      smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    alert_count     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, watch, window_end),
    FOREIGN KEY (tenant, watch) REFERENCES classification_watches (tenant, name) ON DELETE CASCADE
);

-- Alerts, in one sequence; a tenant's alerts commit in sequence order (an advisory lock held to commit), so a
-- stream that has read up to N never sees a smaller sequence appear later.
CREATE TABLE classification_watch_alerts (
    sequence          bigserial   PRIMARY KEY,
    tenant            text        NOT NULL,
    watch             text        NOT NULL,
    window_end        timestamptz NOT NULL,
    type              text        NOT NULL,
    alert             jsonb       NOT NULL,
    post_ids          text[]      NOT NULL,
    data_class        smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    webhook_state     text        NOT NULL,
    webhook_attempts  integer     NOT NULL DEFAULT 0,
    webhook_next_at   timestamptz,
    webhook_error     text        NOT NULL DEFAULT '',
    FOREIGN KEY (tenant, watch) REFERENCES classification_watches (tenant, name) ON DELETE CASCADE
);
CREATE INDEX classification_watch_alerts_tenant ON classification_watch_alerts (tenant, sequence);
CREATE INDEX classification_watch_alerts_webhook ON classification_watch_alerts (webhook_next_at)
    WHERE webhook_state = 'PENDING';
