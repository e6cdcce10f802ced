-- Every call a service served on a tenant's data: one keyed hash-chained row per call and tenant.
-- Subjects are recorded as keyed digests, never as ids, so erasure leaves nothing to erase here.
CREATE TABLE access_ledger (
    tenant          text        NOT NULL,
    sequence        bigint      NOT NULL,
    time            timestamptz NOT NULL,
    method          text        NOT NULL,
    principal       text        NOT NULL,
    purpose         text        NOT NULL,
    resources       text[]      NOT NULL,
    subject_digests text[]      NOT NULL,
    entry           jsonb       NOT NULL,
    previous_hash   text        NOT NULL,
    record_hash     text        NOT NULL,
    PRIMARY KEY (tenant, sequence)
);
-- "Who accessed this subject" is the question asked of it; other filters (collection, principal, method, time)
-- read the tenant's rows in order, as an audit query may: every index is paid for on every call.
CREATE INDEX access_ledger_by_subject ON access_ledger USING gin (subject_digests);

-- Append-only: rows are never updated or deleted by a service.
CREATE FUNCTION access_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access ledger is append-only';
END $$;
CREATE TRIGGER access_ledger_append_only
    BEFORE UPDATE OR DELETE ON access_ledger
    FOR EACH ROW EXECUTE FUNCTION access_ledger_append_only();
