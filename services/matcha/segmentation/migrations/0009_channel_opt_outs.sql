-- Channels each customer opted out of (review channel names: 'email', 'sms', ...): a publication's audience on
-- one of them leaves the customer out.
ALTER TABLE segmentation_customers ADD COLUMN opted_out_channels text[] NOT NULL DEFAULT '{}';
