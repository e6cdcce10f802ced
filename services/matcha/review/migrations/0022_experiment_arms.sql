-- Delivery per arm: an experiment made before publication names approved items as its variants; each is published
-- later to its arm only, and the variant then records its publication.
ALTER TABLE review_experiment_variants ALTER COLUMN publication_id DROP NOT NULL;
ALTER TABLE review_experiment_variants ADD COLUMN item_id text;
ALTER TABLE review_experiment_variants ADD CONSTRAINT review_experiment_variants_item UNIQUE (tenant, item_id);

-- Where an audience resolved at creation came from, and what it left out (consent, opt-outs); the channel of the
-- items. A creation repeated with its idempotency key returns the first experiment.
ALTER TABLE review_experiments
    ADD COLUMN channel                  text   NOT NULL DEFAULT '',
    ADD COLUMN segmentation             text   NOT NULL DEFAULT '',
    ADD COLUMN segmentation_version     integer NOT NULL DEFAULT 0,
    ADD COLUMN segment_id               text   NOT NULL DEFAULT '',
    ADD COLUMN audience_size            bigint NOT NULL DEFAULT 0,
    ADD COLUMN members_sha256           text   NOT NULL DEFAULT '',
    ADD COLUMN excluded_without_consent bigint NOT NULL DEFAULT 0,
    ADD COLUMN excluded_opted_out       bigint NOT NULL DEFAULT 0,
    ADD COLUMN idempotency_key          text;
CREATE UNIQUE INDEX review_experiments_idempotency ON review_experiments (tenant, idempotency_key);

-- A publication to an experiment's arm says which.
ALTER TABLE review_publication_audiences
    ADD COLUMN experiment_id text NOT NULL DEFAULT '',
    ADD COLUMN arm           text NOT NULL DEFAULT '';

-- The trace of the request that published.
ALTER TABLE review_publications ADD COLUMN trace_id text NOT NULL DEFAULT '';
