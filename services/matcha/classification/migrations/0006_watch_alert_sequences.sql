-- A watch's latest alert (GetWatch, ListWatches) and the alerts of one watch after a sequence (a stream of one
-- watch) are read without scanning the tenant's other alerts.
CREATE INDEX classification_watch_alerts_watch ON classification_watch_alerts (tenant, watch, sequence);
