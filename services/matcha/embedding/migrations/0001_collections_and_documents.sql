-- Collections per tenant; each is bound to the model (and dimension) that filled it.
CREATE TABLE embedding_collections (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        text        NOT NULL,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    model_id      text        NOT NULL,
    model_version text        NOT NULL,
    dimension     integer     NOT NULL CHECK (dimension > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

-- One row per document. Each collection gets its own partial HNSW index over
-- embedding::vector(<dimension>) when it is created (see store.py), so searches
-- in one collection never wade through another tenant's vectors.
CREATE TABLE embedding_documents (
    collection_id      bigint      NOT NULL REFERENCES embedding_collections (id) ON DELETE CASCADE,
    external_id        text        NOT NULL,
    text               text        NOT NULL,
    text_sha256        bytea       NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}',
    data_class         smallint    NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    consented_purposes text[]      NOT NULL DEFAULT '{}',
    source             text        NOT NULL DEFAULT '',
    subject_id         text        NOT NULL DEFAULT '',
    model_id           text        NOT NULL,
    model_version      text        NOT NULL,
    embedding          vector      NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, external_id)
);

CREATE INDEX embedding_documents_subject ON embedding_documents (subject_id) WHERE subject_id <> '';
