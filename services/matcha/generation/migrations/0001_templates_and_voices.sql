-- Prompt templates: every version kept, so a reply can name the exact version it used.
CREATE TABLE generation_prompt_templates (
    tenant         text        NOT NULL,
    name           text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    description    text        NOT NULL DEFAULT '',
    system         text        NOT NULL DEFAULT '',
    template       text        NOT NULL,
    variables      text[]      NOT NULL,
    sha256         text        NOT NULL,
    create_subject text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version)
);

-- Voice profiles: the learned features as JSON, the centroid of the brand's passages for scoring.
CREATE TABLE generation_voice_profiles (
    tenant          text        NOT NULL,
    name            text        NOT NULL,
    version         integer     NOT NULL CHECK (version > 0),
    description     text        NOT NULL DEFAULT '',
    features        jsonb       NOT NULL,
    preferred_terms text[]      NOT NULL DEFAULT '{}',
    banned_terms    text[]      NOT NULL DEFAULT '{}',
    centroid        vector      NOT NULL,
    similarity_p05  real        NOT NULL,
    similarity_p50  real        NOT NULL,
    model_id        text        NOT NULL,
    model_version   text        NOT NULL,
    corpus_sha256   text        NOT NULL,
    create_subject  text        NOT NULL,
    idempotency_key text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, version)
);

CREATE UNIQUE INDEX generation_voice_profiles_idempotency
    ON generation_voice_profiles (tenant, idempotency_key) WHERE idempotency_key <> '';

-- Exemplar passages of a profile version, with their vectors to pick those closest to a brief.
CREATE TABLE generation_voice_exemplars (
    tenant      text    NOT NULL,
    name        text    NOT NULL,
    version     integer NOT NULL,
    position    integer NOT NULL,
    text        text    NOT NULL,
    document_id text    NOT NULL,
    centrality  real    NOT NULL,
    embedding   vector  NOT NULL,
    PRIMARY KEY (tenant, name, version, position),
    FOREIGN KEY (tenant, name, version) REFERENCES generation_voice_profiles (tenant, name, version) ON DELETE CASCADE
);
