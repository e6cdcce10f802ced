-- Training examples whose policy names a data subject, per classifier version: erasing the subject withdraws
-- the versions trained on them, and the data map lists them. Texts are not kept, only what ties an example to
-- its subject.
CREATE TABLE classification_example_subjects (
    tenant             text     NOT NULL,
    name               text     NOT NULL,
    version            integer  NOT NULL,
    example_id         text     NOT NULL,
    subject_id         text     NOT NULL,
    label              text     NOT NULL,
    data_class         smallint NOT NULL CHECK (data_class BETWEEN 1 AND 4),
    consented_purposes text[]   NOT NULL,
    source             text     NOT NULL,
    PRIMARY KEY (tenant, name, version, example_id),
    FOREIGN KEY (tenant, name, version) REFERENCES classification_classifiers (tenant, name, version)
        ON DELETE CASCADE
);
CREATE INDEX classification_example_subjects_subject ON classification_example_subjects (tenant, subject_id);

-- A version trained on an erased subject's examples is withdrawn: its weights are deleted and the row stays as
-- the record of what was trained (version numbers are never reused).
ALTER TABLE classification_classifiers ALTER COLUMN head DROP NOT NULL, ADD COLUMN withdrawn_at timestamptz;
