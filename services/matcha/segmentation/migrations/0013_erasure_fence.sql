-- The per-event tables drop their foreign keys to customers: each row they checked cost a lookup and a lock
-- of the customer's row, about a quarter of PostgreSQL's time on the live path. Erasure deletes their rows
-- itself, and every transaction writing them holds erasure off (see `hold_off_erasure` in customer_store.py).
ALTER TABLE segmentation_events DROP CONSTRAINT segmentation_events_customer_key_fkey;
ALTER TABLE segmentation_transactions DROP CONSTRAINT segmentation_transactions_customer_key_fkey;
ALTER TABLE segmentation_purchases DROP CONSTRAINT segmentation_purchases_customer_key_fkey;
ALTER TABLE segmentation_changes DROP CONSTRAINT segmentation_changes_customer_key_fkey;
ALTER TABLE segmentation_condition_members DROP CONSTRAINT segmentation_condition_members_customer_key_fkey;
