-- Principals an admin revoked: their runs fail at their next hop (the conductor mints no workload token for
-- them), and they start no new run.
CREATE TABLE conductor_revoked_principals (
    tenant      text        NOT NULL,
    subject     text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    revoked_by  text        NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, subject)
);
