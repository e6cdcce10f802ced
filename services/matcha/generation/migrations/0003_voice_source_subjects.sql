-- Source documents whose policy names a data subject, per voice profile version: erasing the subject deletes
-- the exemplars taken from them and withdraws the versions learned from them, and the data map lists them.
-- Texts are not kept here, only what ties a document to its subject.
CREATE TABLE generation_voice_sources (
    tenant             text     NOT NULL,
    name               text     NOT NULL,
    version            integer  NOT NULL,
    document_id        text     NOT NULL,
    subject_id         text     NOT NULL,
    data_class         smallint NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    consented_purposes text[]   NOT NULL,
    source             text     NOT NULL,
    PRIMARY KEY (tenant, name, version, document_id),
    FOREIGN KEY (tenant, name, version) REFERENCES generation_voice_profiles (tenant, name, version) ON DELETE CASCADE
);
CREATE INDEX generation_voice_sources_subject ON generation_voice_sources (tenant, subject_id);

-- A withdrawn version keeps its row as the record of what was learned; the features it learned are deleted.
ALTER TABLE generation_voice_profiles
    ALTER COLUMN features DROP NOT NULL,
    ALTER COLUMN centroid DROP NOT NULL,
    ADD COLUMN withdrawn_at timestamptz;
