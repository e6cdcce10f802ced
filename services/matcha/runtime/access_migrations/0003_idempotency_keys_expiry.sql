-- Bindings expire (matcha.runtime.idempotency.RETENTION): the deletion finds the old ones by this index.
CREATE INDEX idempotency_keys_bound_at ON idempotency_keys (bound_at);
