-- The audience of a publication, resolved when it was published: where the members came from, how many were left
-- out and why, and the digest of the member list; the members themselves are one row each.
CREATE TABLE review_publication_audiences (
    key                       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    publication_id            uuid        NOT NULL UNIQUE REFERENCES review_publications (id) ON DELETE CASCADE,
    tenant                    text        NOT NULL,
    -- The item's channel and purpose, and its class.
    channel                   text        NOT NULL,
    purpose                   text        NOT NULL,
    data_class                integer     NOT NULL,
    segmentation              text        NOT NULL DEFAULT '',
    segmentation_version      integer     NOT NULL DEFAULT 0,
    segment_id                text        NOT NULL DEFAULT '',
    size                      bigint      NOT NULL,
    members_sha256            text        NOT NULL,
    excluded_without_consent  bigint      NOT NULL,
    excluded_opted_out        bigint      NOT NULL,
    excluded_frequency_capped bigint      NOT NULL,
    frequency_cap_messages    integer     NOT NULL,
    frequency_cap_window      interval    NOT NULL,
    created_at                timestamptz NOT NULL DEFAULT now()
);
-- The frequency cap reads a channel's recent audiences.
CREATE INDEX review_publication_audiences_recent ON review_publication_audiences (tenant, channel, created_at);

-- Written by one COPY per publication, in id order: no foreign key and no b-tree to maintain per row (a million
-- members are one statement); a BRIN index finds an audience's rows, which are contiguous.
CREATE TABLE review_audience_members (
    audience_key bigint NOT NULL,
    customer_id  text   COLLATE "C" NOT NULL
);
CREATE INDEX review_audience_members_audience ON review_audience_members USING brin (audience_key);

-- Members go with their audience (an erased item's publication takes its audience with it).
CREATE FUNCTION review_forget_audience_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM review_audience_members WHERE audience_key IN (SELECT key FROM forgotten);
    RETURN NULL;
END $$;

CREATE TRIGGER review_publication_audiences_forget AFTER DELETE ON review_publication_audiences
    REFERENCING OLD TABLE AS forgotten FOR EACH STATEMENT EXECUTE FUNCTION review_forget_audience_members();
