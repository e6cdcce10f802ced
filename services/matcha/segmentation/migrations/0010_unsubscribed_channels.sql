-- Channels a customer unsubscribed from (Unsubscribe, fed from campaign outcomes): apart from
-- opted_out_channels, which IngestCustomers replaces with the caller's list at every sync, so that an
-- unsubscription is never undone by the next import of a CRM that has not heard of it.
ALTER TABLE segmentation_customers ADD COLUMN unsubscribed_channels text[] NOT NULL DEFAULT '{}';
