-- Live condition segments are partitioned across replicas by a stable hash of the customer id: its slot is
-- the first two bytes of the id's MD5, modulo 1024 (`partitions.slot_of` computes the same in Python).
ALTER TABLE segmentation_customers ADD COLUMN slot smallint NOT NULL GENERATED ALWAYS AS (
    ((get_byte(decode(md5(id), 'hex'), 0) * 256 + get_byte(decode(md5(id), 'hex'), 1)) % 1024)::smallint) STORED;

-- The replica that counts the events of each slot's customers. A store of events locks its slots' rows
-- (FOR SHARE) in its own transaction and checks it is their owner, so a slot changes hands only between
-- two stores, and a new owner's snapshot holds every event the previous one stored.
CREATE TABLE segmentation_slot_owners (
    slot        smallint    PRIMARY KEY,
    replica     text,
    address     text        NOT NULL DEFAULT '',
    epoch       bigint      NOT NULL DEFAULT 0,
    lease_until timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO segmentation_slot_owners (slot) SELECT generate_series(0, 1023);

-- Replicas taking part, by heartbeat: each takes its fair share of the slots of those alive.
CREATE TABLE segmentation_replicas (
    replica text        PRIMARY KEY,
    address text        NOT NULL,
    seen_at timestamptz NOT NULL
);

-- Slots whose customers have been evaluated for a new condition segment version: it is READY once
-- every slot is (with one replica, one evaluation covers them all).
CREATE TABLE segmentation_condition_coverage (
    segment_id bigint   NOT NULL REFERENCES segmentation_condition_segments (id) ON DELETE CASCADE,
    slot       smallint NOT NULL,
    PRIMARY KEY (segment_id, slot)
);
