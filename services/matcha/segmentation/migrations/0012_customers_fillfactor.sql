-- An events message updates the purchase aggregates of the customers who bought. With a sixth of each page
-- left free, those updates stay on their page (HOT: no new entry in the customers' three indexes); on full
-- pages most of them moved their row. Applies to pages written from now on; existing ones as they are rewritten.
ALTER TABLE segmentation_customers SET (fillfactor = 85);
