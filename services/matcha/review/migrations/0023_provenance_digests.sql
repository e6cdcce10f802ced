-- An approval covers the provenance of the text as well as the text: its digest is recorded with the decision and
-- on the item, and checked at publication. Items approved before have none (NULL), and are published as before.
ALTER TABLE review_decisions ADD COLUMN provenance_sha256 text NOT NULL DEFAULT '';
ALTER TABLE review_items ADD COLUMN approved_provenance_sha256 text;
