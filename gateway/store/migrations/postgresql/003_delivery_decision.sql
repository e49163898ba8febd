-- The decision that allowed an accepted notification (allow, rule, location, policy
-- version) as JSON, kept beside its decision_id and trace id (issue 15).
ALTER TABLE deliveries ADD COLUMN decision TEXT NOT NULL DEFAULT '{}';
