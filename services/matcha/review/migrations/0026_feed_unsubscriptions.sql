-- Unsubscriptions reported as campaign outcomes are fed on to segmentation as well, where they leave the
-- customer out of later publications on the experiment's channel (an opt-out no later import undoes).
CREATE OR REPLACE FUNCTION review_feed_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO review_outcome_feed (tenant, event_id)
    SELECT tenant, event_id FROM stored WHERE outcome IN ('CLICKED', 'CONVERTED', 'UNSUBSCRIBED');
    RETURN NULL;
END $$;
