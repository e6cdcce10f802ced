-- A rule of automatic promotion: the probability of being best a variant needs, on which outcome. NULL: no rule.
ALTER TABLE review_experiments
    ADD COLUMN auto_promote_probability double precision,
    ADD COLUMN auto_promote_outcome     text NOT NULL DEFAULT '';
