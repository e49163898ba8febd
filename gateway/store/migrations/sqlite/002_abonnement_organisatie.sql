-- createAbonnement's organisatieId (seed 001 section 5.3), kept as the subscriber sent it.
ALTER TABLE abonnementen ADD COLUMN organisatie_id TEXT;
