-- Outcome events that segmentation should see as behaviour (clicks, conversions), written by the statement
-- that stores them (a transactional outbox: an event is fed if and only if it was stored), removed once
-- segmentation acknowledged them. Erasing an event removes its feed row with it.
CREATE TABLE review_outcome_feed (
    tenant   text NOT NULL,
    event_id text NOT NULL,
    -- Why segmentation refused the event for good (its customer unknown there, ...): kept for the operator,
    -- never retried.
    refused  text,
    PRIMARY KEY (tenant, event_id),
    FOREIGN KEY (tenant, event_id) REFERENCES review_outcome_events (tenant, event_id) ON DELETE CASCADE
);
CREATE INDEX review_outcome_feed_pending ON review_outcome_feed (tenant) WHERE refused IS NULL;

CREATE FUNCTION review_feed_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO review_outcome_feed (tenant, event_id)
    SELECT tenant, event_id FROM stored WHERE outcome IN ('CLICKED', 'CONVERTED');
    RETURN NULL;
END $$;

-- Once per statement over the rows it stored: one insert per ingestion call, whatever its size.
CREATE TRIGGER review_outcome_events_feed AFTER INSERT ON review_outcome_events
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION review_feed_outcomes();
