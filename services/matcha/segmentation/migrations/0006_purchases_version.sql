-- Bumped in the same transaction by every statement that changes what recommendations count: purchases
-- (new transactions, erasure) and which customers may count (their consent and data class). A service
-- keeps the tenant's buyers per item between calls for as long as the version it read them at holds.
ALTER TABLE segmentation_tenants ADD COLUMN purchases_version bigint NOT NULL DEFAULT 0;
