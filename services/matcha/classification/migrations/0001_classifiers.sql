-- Version counter per classifier name: versions are never reused, even after a deletion.
CREATE TABLE classification_classifier_names (
    tenant       text    NOT NULL,
    name         text    NOT NULL,
    last_version integer NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- One row per trained version, with what it learned from (lineage) and how well it did.
CREATE TABLE classification_classifiers (
    tenant                  text        NOT NULL,
    name                    text        NOT NULL,
    version                 integer     NOT NULL CHECK (version > 0),
    description             text        NOT NULL DEFAULT '',
    labels                  text[]      NOT NULL,
    method                  text        NOT NULL,
    head                    bytea       NOT NULL,
    holdout_metrics         jsonb       NOT NULL,
    training_set_sha256     text        NOT NULL,
    example_count           integer     NOT NULL,
    example_ids             text[]      NOT NULL,
    embedding_model_id      text        NOT NULL,
    embedding_model_version text        NOT NULL,
    train_subject           text        NOT NULL,
    seed                    bigint      NOT NULL,
    idempotency_key         text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version)
);

CREATE UNIQUE INDEX classification_classifiers_idempotency
    ON classification_classifiers (tenant, idempotency_key) WHERE idempotency_key <> '';
