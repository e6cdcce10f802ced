-- One row per customer and item bought (refunds aside): what recommendations count. Kept by the
-- statement that stores transactions, so popularity and co-occurrence are plain counts over it
-- instead of DISTINCT over every transaction; erased with the customer.
CREATE TABLE segmentation_purchases (
    tenant       text        NOT NULL,
    customer_key bigint      NOT NULL REFERENCES segmentation_customers (key) ON DELETE CASCADE,
    item_id      text        NOT NULL CHECK (item_id <> ''),
    purchases    bigint      NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_key, item_id)
);
CREATE INDEX segmentation_purchases_item ON segmentation_purchases (tenant, item_id, customer_key);

INSERT INTO segmentation_purchases (tenant, customer_key, item_id, purchases, last_at)
SELECT tenant, customer_key, item_id, count(*), max(time) FROM segmentation_transactions
WHERE item_id <> '' AND NOT refund
GROUP BY tenant, customer_key, item_id;
